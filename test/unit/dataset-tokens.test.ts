import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { BadDataError, InvalidModelConfigError } from "../../actors/compute/errors.js";
import { loadFileDataset } from "../../actors/compute/dataset-file.js";
import { DEFAULT_MAX_LEN, FileDatasetSpec } from "../../actors/compute/dataset-spec.js";
import { CLS_ID, PAD_ID, SEP_ID, WordPieceTokenizer } from "../../actors/compute/tokenizer.js";
import { selectBackend } from "../../actors/compute/backend.js";
import { buildModel } from "../../actors/compute/models.js";

const dir = mkdtempSync(join(tmpdir(), "flock-tokens-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return pathToFileURL(path).href;
}

const WORDS = ["cheap", "pills", "meeting", "tomorrow", "free", "money", "lunch", "report", "offer", "team"];
/** A JSONL corpus: 40 records, label spam/ham, text of 3-14 words (deterministic). */
function corpus(labelled: boolean): string {
  return Array.from({ length: 40 }, (_, i) => {
    const n = 3 + ((i * 7) % 12);
    const text = Array.from({ length: n }, (_, j) => WORDS[(i + j * 3) % WORDS.length]).join(" ");
    return JSON.stringify(labelled ? { text, y: i % 2 ? "spam" : "ham" } : { text });
  }).join("\n");
}

const spec = (extra: Record<string, unknown>): FileDatasetSpec =>
  FileDatasetSpec.parse({
    source: file("corpus.jsonl", corpus(true)),
    format: "jsonl",
    text: "text",
    ...extra,
  });

test("a tokenizer dataset: maxLen ids per sample, [CLS] … [SEP] then [PAD], truncated", () => {
  const d = loadFileDataset(spec({ label: "y", tokenizer: { vocabSize: 60, maxLen: 12 } }), 1);
  assert.equal(d.inputSize, 12);
  assert.deepEqual(d.inputShape, [12]);
  assert.equal(d.numClasses, 2);
  assert.ok(d.tokens);
  assert.equal(d.tokens.maxLen, 12);
  assert.equal(d.tokens.vocabulary, d.tokens.tokenizer.vocab.length);
  assert.ok(d.tokens.vocabulary <= 60);
  const batch = d.trainBatch(Array.from({ length: d.trainSize }, (_, i) => i));
  let truncated = 0;
  let padded = 0;
  for (let r = 0; r < batch.n; r++) {
    const row = Array.from(batch.x.subarray(r * 12, (r + 1) * 12));
    assert.equal(row[0], CLS_ID);
    assert.ok(row.every((v) => Number.isInteger(v) && v >= 0 && v < d.tokens!.vocabulary));
    const sep = row.indexOf(SEP_ID);
    assert.ok(sep >= 1, `row ${r} has [SEP]`);
    assert.ok(row.slice(sep + 1).every((v) => v === PAD_ID));
    if (sep === 11) truncated++;
    else padded++;
  }
  assert.ok(truncated > 0 && padded > 0, `both cases occur (${truncated} truncated, ${padded} padded)`);
  // A test file keeps file order: each row is the tokenizer's encoding of that record's text.
  const testUrl = file("test.jsonl", corpus(true));
  const ordered = loadFileDataset(
    spec({ label: "y", tokenizer: { vocabSize: 60, maxLen: 12 }, test: testUrl }),
    1,
  );
  const texts = corpus(true)
    .split("\n")
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const tok = WordPieceTokenizer.fromJSON(ordered.tokens!.tokenizer);
  const rows = ordered.testBatch(texts.map((_, i) => i));
  texts.forEach((t, r) =>
    assert.deepEqual(Array.from(rows.x.subarray(r * 12, (r + 1) * 12)), Array.from(tok.encode(t, 12))),
  );
  assert.equal(d.preprocessing.tokens?.field, "text");
  assert.equal(d.preprocessing.text, undefined);
});

test("the vocabulary is the same on two loads; defaults apply; the test split uses it", () => {
  const a = loadFileDataset(spec({ label: "y", tokenizer: {} }), 7);
  const b = loadFileDataset(spec({ label: "y", tokenizer: {} }), 7);
  assert.deepEqual(a.tokens?.tokenizer, b.tokens?.tokenizer);
  assert.equal(a.inputSize, DEFAULT_MAX_LEN);
  const all = (d: typeof a) => d.testBatch(Array.from({ length: d.testSize }, (_, i) => i)).x;
  assert.deepEqual(all(a), all(b));
});

test("an unlabelled corpus: numClasses 0, labels 0, only with a tokenizer", () => {
  const url = file("plain.jsonl", corpus(false));
  const d = loadFileDataset(
    FileDatasetSpec.parse({ source: url, format: "jsonl", text: "text", tokenizer: { maxLen: 6 } }),
    1,
  );
  assert.equal(d.numClasses, 0);
  assert.deepEqual(Array.from(d.trainBatch([0, 1, 2]).y), [0, 0, 0]);
  assert.deepEqual(d.preprocessing.classes, []);
  assert.equal(d.preprocessing.label, undefined);
  const noLabel = FileDatasetSpec.safeParse({ source: url, format: "jsonl", text: "text" });
  assert.ok(!noLabel.success);
  assert.match(noLabel.error.issues[0]?.message ?? "", /label is required/);
});

test("the spec refuses features or a bag-of-words vocabSize with a tokenizer, and a tokenizer without text", () => {
  const source = file("x.jsonl", corpus(true));
  const issues = (extra: Record<string, unknown>) => {
    const r = FileDatasetSpec.safeParse({ source, format: "jsonl", label: "y", tokenizer: {}, ...extra });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  assert.deepEqual(issues({ text: "text" }), []);
  assert.match(issues({}).join(), /text: a tokenizer encodes the text field/);
  assert.match(
    issues({ text: "text", features: ["a"] }).join(),
    /features: features cannot be combined with tokenizer/,
  );
  assert.match(issues({ text: "text", vocabSize: 10 }).join(), /vocabSize: .*tokenizer\.vocabSize/);
  assert.match(issues({ text: "text", tokenizer: { maxLen: 1 } }).join(), /tokenizer/);
  assert.match(issues({ text: "text", tokenizer: "dir/relative" }).join(), /not a file:\/\/ URL/);
});

test("a tokenizer from a model folder's flock.json; hostile files are refused naming file and field", () => {
  const first = loadFileDataset(spec({ label: "y", tokenizer: { vocabSize: 30, maxLen: 10 } }), 1);
  const model = join(dir, "model");
  mkdirSync(model, { recursive: true });
  writeFileSync(
    join(model, "flock.json"),
    JSON.stringify({ flock: 1, maxLen: 10, tokenizer: first.tokens?.tokenizer }),
  );
  const other = file("other.jsonl", corpus(false));
  const reused = loadFileDataset(
    FileDatasetSpec.parse({
      source: other,
      format: "jsonl",
      text: "text",
      tokenizer: pathToFileURL(model).href,
    }),
    3,
  );
  assert.deepEqual(reused.tokens, first.tokens);
  assert.equal(reused.inputSize, 10);
  const bad = (name: string, content: unknown, problem: RegExp, field?: string) => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "flock.json"), typeof content === "string" ? content : JSON.stringify(content));
    assert.throws(
      () =>
        loadFileDataset(
          FileDatasetSpec.parse({
            source: other,
            format: "jsonl",
            text: "text",
            tokenizer: pathToFileURL(d).href,
          }),
          1,
        ),
      (e: unknown) => {
        assert.ok(e instanceof BadDataError, String(e));
        assert.ok(e.message.startsWith(join(d, "flock.json")), e.message);
        if (field) assert.match(e.message, new RegExp(`field "${field}"`));
        assert.match(e.message, problem);
        return true;
      },
    );
  };
  bad("notjson", "{", /is not JSON/);
  bad("nomaxlen", { tokenizer: first.tokens?.tokenizer }, /has no tokenizer and maxLen/, "maxLen");
  bad(
    "badvocab",
    {
      maxLen: 8,
      tokenizer: { type: "wordpiece", version: 1, lowercase: true, maxWordChars: 10, vocab: ["a"] },
    },
    /invalid tokenizer/,
    "tokenizer",
  );
  assert.throws(
    () =>
      loadFileDataset(
        FileDatasetSpec.parse({
          source: other,
          format: "jsonl",
          text: "text",
          tokenizer: pathToFileURL(join(dir, "none")).href,
        }),
        1,
      ),
    /cannot be read/,
  );
});

test("a text field that is not a string is refused naming file, line and field", () => {
  const url = file("badtext.jsonl", `{"text":"ok","y":"a"}\n{"text":5,"y":"b"}\n`);
  assert.throws(
    () =>
      loadFileDataset(
        FileDatasetSpec.parse({ source: url, format: "jsonl", label: "y", text: "text", tokenizer: {} }),
        1,
      ),
    /badtext\.jsonl: line 2, field "text": text must be a string/,
  );
});

test("buildModel sizes a transformer from the dataset's tokens and refuses a mismatch or no tokens", async () => {
  await selectBackend("cpu");
  const d = loadFileDataset(spec({ label: "y", tokenizer: { vocabSize: 30, maxLen: 8 } }), 1);
  const v = d.tokens!.vocabulary;
  const small = { layers: 1, heads: 2, width: 8, ffn: 8 };
  const built = await buildModel({ name: "text-transformer", ...small }, d);
  assert.deepEqual(built.inputShape, [8]);
  built.model.dispose();
  const lm = await buildModel({ name: "text-transformer-mlm", ...small }, d, "mlm");
  assert.deepEqual(lm.model.outputs[0]?.shape, [null, 8, v]);
  lm.model.dispose();
  await assert.rejects(
    buildModel({ name: "text-transformer", ...small, vocabulary: v + 1 }, d),
    (e: unknown) =>
      e instanceof InvalidModelConfigError &&
      e.message.includes(`vocabulary ${v + 1}`) &&
      e.message.includes(`vocabulary ${v}`),
  );
  await assert.rejects(
    buildModel({ name: "text-transformer", ...small, maxLen: 16 }, d),
    /maxLen 16 but dataset "corpus.jsonl" has maxLen 8/,
  );
  await assert.rejects(
    buildModel({ name: "text-transformer", ...small }, d, "mlm"),
    /task mlm .* needs \[8, \d+\]/,
  );
  await assert.rejects(buildModel({ name: "text-transformer-mlm", ...small }, d), /2 classes/);
  await assert.rejects(
    buildModel("text-transformer", { name: "plain", inputSize: 64, numClasses: 2 }),
    (e: unknown) => e instanceof InvalidModelConfigError && /reads token ids.*has none/.test(e.message),
  );
});

test("tokenize(text, limit) is the first limit ids of the whole text's (encode stops early)", () => {
  const d = loadFileDataset(spec({ label: "y", tokenizer: { vocabSize: 30, maxLen: 8 } }), 1);
  const tok = WordPieceTokenizer.fromJSON(d.tokens!.tokenizer);
  const text =
    corpus(true)
      .replace(/[{}":,]/g, " ")
      .repeat(5) + " Ünïcode ÅB, x!";
  const all = tok.tokenize(text);
  assert.ok(all.length > 200);
  for (const limit of [0, 1, 2, 7, 50, all.length, all.length + 3])
    assert.deepEqual(tok.tokenize(text, limit), all.slice(0, limit), `limit ${limit}`);
  assert.deepEqual(Array.from(tok.encode(text, 8)), [CLS_ID, ...all.slice(0, 6), SEP_ID]);
});
