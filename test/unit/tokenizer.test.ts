import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CLS_ID,
  InvalidTokenizerError,
  MAX_VOCABULARY,
  PAD_ID,
  SEP_ID,
  SPECIAL_TOKENS,
  UNK_ID,
  WordPieceTokenizer,
} from "../../actors/compute/tokenizer.js";
import { trainWordPiece } from "../../actors/compute/tokenizer-train.js";

const corpus = [
  "Free money!!! Click here to claim your free prize now.",
  "The meeting is moved to Tuesday; please bring the slides.",
  "Claim your prize: free entries, free money, free tickets.",
  "Meeting notes: the slides are attached, see you on Tuesday.",
  "Unsubscribe here if you do not want free offers.",
];

test("training is deterministic: same texts, same vocabulary (order of equal counts included)", () => {
  const a = trainWordPiece(corpus, { vocabSize: 80 }).toJSON();
  const b = trainWordPiece([...corpus], { vocabSize: 80 }).toJSON();
  assert.deepEqual(a, b);
  assert.deepEqual(a.vocab.slice(0, 5), [...SPECIAL_TOKENS]);
  assert.equal(a.vocab.length, 80);
  assert.ok(a.vocab.includes("free"), "the most frequent word is learned whole");
  // Different texts give a different vocabulary: the comparison can fail.
  assert.notDeepEqual(trainWordPiece(corpus.slice(1), { vocabSize: 80 }).toJSON().vocab, a.vocab);
});

test("encode and decode round trip; [CLS], [SEP] and [PAD] frame a fixed length", () => {
  const tok = trainWordPiece(corpus, { vocabSize: 120 });
  const text = "Claim your free prize, see you Tuesday!";
  const ids = tok.encode(text, 16);
  assert.equal(ids.length, 16);
  assert.equal(ids[0], CLS_ID);
  const sep = ids.indexOf(SEP_ID);
  assert.ok(sep > 1);
  assert.ok(ids.slice(sep + 1).every((id) => id === PAD_ID));
  assert.ok(!ids.includes(UNK_ID));
  assert.equal(tok.decode(ids), "claim your free prize , see you tuesday !");
  // Words made of known characters but unseen as a whole decompose into ## pieces.
  const pieces = tok.tokenize("freeing").map((id) => tok.token(id));
  assert.ok(pieces.length > 1 && pieces.slice(1).every((p) => p.startsWith("##")), pieces.join(" "));
  assert.equal(tok.decode(tok.tokenize("freeing")), "freeing");
  // Truncation keeps [SEP] last.
  const short = tok.encode(text, 4);
  assert.deepEqual([short[0], short[3]], [CLS_ID, SEP_ID]);
  // The JSON form rebuilds the same tokenizer.
  const again = WordPieceTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
  assert.deepEqual(again.encode(text, 16), ids);
});

test("unknown characters, over-long words and text that looks like a special token", () => {
  const tok = trainWordPiece(corpus, { vocabSize: 120, maxWordChars: 12 });
  assert.deepEqual(tok.tokenize("free 漢字 money"), [
    ...tok.tokenize("free"),
    UNK_ID,
    ...tok.tokenize("money"),
  ]);
  assert.deepEqual(tok.tokenize("freefreefreefree"), [UNK_ID], "longer than maxWordChars");
  // "[MASK]" typed in a text is punctuation and letters, never the special id.
  const ids = tok.tokenize("[MASK] [PAD]");
  assert.ok(!ids.includes(4) && !ids.includes(PAD_ID));
  assert.equal(tok.decode([UNK_ID]), "[UNK]");
  assert.equal(tok.token(10 ** 6), "[UNK]");
});

test("bounds: vocabulary size, word length and hostile JSON", () => {
  assert.throws(() => trainWordPiece(corpus, { vocabSize: 5 }), RangeError);
  assert.throws(() => trainWordPiece(corpus, { vocabSize: MAX_VOCABULARY + 1 }), RangeError);
  assert.throws(() => trainWordPiece(corpus, { vocabSize: 50, maxWordChars: 101 }), RangeError);
  // A vocabulary too small for the alphabet keeps the most frequent characters; the rest are [UNK].
  const small = trainWordPiece(corpus, { vocabSize: 10 });
  assert.equal(small.size, 10);
  assert.ok(small.tokenize("zzz").every((id) => id === UNK_ID));
  // A corpus with little to merge stops early instead of padding the vocabulary.
  assert.ok(trainWordPiece(["a b"], { vocabSize: 100 }).size < 100);
  const good = trainWordPiece(corpus, { vocabSize: 40 }).toJSON();
  const bad = [
    { ...good, vocab: good.vocab.slice(1) },
    { ...good, vocab: [...good.vocab, "free", "free"] },
    { ...good, vocab: [...good.vocab, "x".repeat(200)] },
    { ...good, maxWordChars: 0 },
    { ...good, extra: 1 },
    null,
  ];
  for (const json of bad) assert.throws(() => WordPieceTokenizer.fromJSON(json), InvalidTokenizerError);
});
