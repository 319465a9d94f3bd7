import {
  MAX_VOCABULARY,
  MAX_WORD_CHARS,
  SPECIAL_TOKENS,
  WordPieceTokenizer,
  splitWords,
  type TokenizerJson,
} from "./tokenizer.js";

/**
 * Learns a WordPiece vocabulary from texts, deterministically: the same texts and options give
 * the same vocabulary on every machine (no randomness, no iteration over unordered containers
 * without sorting, ties broken by comparing strings). Like Hugging Face's WordPieceTrainer (a BPE
 * trainer with a `##` continuation prefix): start from the characters, then repeatedly merge the
 * most frequent adjacent pair of pieces within words until the vocabulary is full.
 *
 * Hand-written: the JavaScript WordPiece/BPE libraries load a vocabulary trained elsewhere
 * (tokenizers.js, the tfjs-layers BytePairTokenizer); none trains one, and the only trainer
 * (Hugging Face `tokenizers`) is a native Rust addon, which this project avoids (cf. tfjs-node
 * being optional).
 * @module
 */

/** Options of {@link trainWordPiece}. */
export interface TrainOptions {
  /** Vocabulary size, specials included; at least the specials + 1, at most {@link MAX_VOCABULARY}. */
  vocabSize: number;
  /** Default true. */
  lowercase?: boolean;
  /** Words longer than this are `[UNK]` and not learned from; default {@link MAX_WORD_CHARS}. */
  maxWordChars?: number;
  /** Fewest occurrences of a pair to merge it; default 2 (a pair seen once generalises to nothing). */
  minPairCount?: number;
}

interface Word {
  pieces: string[];
  count: number;
}

const SEP = "\u0000"; // cannot occur in a piece: words are runs of letters, digits and marks or one symbol

/** A trained tokenizer (see the module comment); throws RangeError for options out of bounds. */
export function trainWordPiece(texts: Iterable<string>, options: TrainOptions): WordPieceTokenizer {
  const { vocabSize, lowercase = true, maxWordChars = MAX_WORD_CHARS, minPairCount = 2 } = options;
  const specials = SPECIAL_TOKENS.length;
  if (!Number.isInteger(vocabSize) || vocabSize <= specials || vocabSize > MAX_VOCABULARY)
    throw new RangeError(
      `vocabSize must be an integer from ${specials + 1} to ${MAX_VOCABULARY}, got ${vocabSize}`,
    );
  if (!Number.isInteger(maxWordChars) || maxWordChars < 1 || maxWordChars > MAX_WORD_CHARS)
    throw new RangeError(`maxWordChars must be an integer from 1 to ${MAX_WORD_CHARS}`);
  const words = countWords(texts, lowercase, maxWordChars);
  const vocab: string[] = [...SPECIAL_TOKENS, ...alphabet(words, vocabSize - specials)];
  const known = new Set(vocab);
  // Characters left out of a full alphabet cannot be merged from: those words stay [UNK].
  const usable = words.filter((w) => w.pieces.every((p) => known.has(p)));
  const pairs = new PairIndex(usable);
  while (vocab.length < vocabSize) {
    const best = pairs.best(minPairCount);
    if (best === undefined) break;
    const merged = pairs.merge(best);
    if (!known.has(merged)) {
      known.add(merged);
      vocab.push(merged);
    }
  }
  const json: TokenizerJson = { type: "wordpiece", version: 1, lowercase, maxWordChars, vocab };
  return WordPieceTokenizer.fromJSON(json);
}

/** Distinct words with their counts, split into characters (`##` on all but the first), sorted. */
function countWords(texts: Iterable<string>, lowercase: boolean, maxWordChars: number): Word[] {
  const counts = new Map<string, number>();
  for (const text of texts)
    for (const word of splitWords(text, lowercase))
      if (Array.from(word).length <= maxWordChars) counts.set(word, (counts.get(word) ?? 0) + 1);
  return [...counts.keys()].sort().map((word) => ({
    pieces: Array.from(word).map((c, i) => (i === 0 ? c : `##${c}`)),
    count: counts.get(word) ?? 0,
  }));
}

/** The most frequent initial pieces (ties by string order), at most `room` of them, sorted. */
function alphabet(words: readonly Word[], room: number): string[] {
  const counts = new Map<string, number>();
  for (const w of words) for (const p of w.pieces) counts.set(p, (counts.get(p) ?? 0) + w.count);
  const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || compare(a[0], b[0]));
  return ranked
    .slice(0, room)
    .map(([p]) => p)
    .sort(compare);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Adjacent-pair counts over the words, updated incrementally as pairs merge. */
class PairIndex {
  private readonly counts = new Map<string, number>();
  private readonly where = new Map<string, Set<number>>();

  constructor(private readonly words: Word[]) {
    words.forEach((_, i) => this.add(i, 1));
  }

  /** The most frequent pair (ties: the smallest key) with at least `min` occurrences. */
  best(min: number): string | undefined {
    let best: string | undefined;
    let bestCount = min - 1;
    for (const [key, count] of this.counts) {
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    return best;
  }

  /** Merges every occurrence of `key` in the words holding it; returns the merged piece. */
  merge(key: string): string {
    const [a = "", b = ""] = key.split(SEP);
    const merged = a + b.slice(2);
    const holders = [...(this.where.get(key) ?? [])].sort((x, y) => x - y);
    for (const i of holders) {
      const word = this.words[i];
      if (!word) continue;
      this.add(i, -1);
      const out: string[] = [];
      for (let j = 0; j < word.pieces.length; j++) {
        if (word.pieces[j] === a && word.pieces[j + 1] === b) {
          out.push(merged);
          j++;
        } else out.push(word.pieces[j] ?? "");
      }
      word.pieces = out;
      this.add(i, 1);
    }
    return merged;
  }

  private add(i: number, sign: 1 | -1): void {
    const word = this.words[i];
    if (!word) return;
    for (let j = 0; j + 1 < word.pieces.length; j++) {
      const key = `${word.pieces[j]}${SEP}${word.pieces[j + 1]}`;
      const count = (this.counts.get(key) ?? 0) + sign * word.count;
      if (count > 0) this.counts.set(key, count);
      else this.counts.delete(key);
      let set = this.where.get(key);
      if (sign > 0) {
        if (!set) this.where.set(key, (set = new Set()));
        set.add(i);
      } else if (count <= 0) this.where.delete(key);
    }
  }
}
