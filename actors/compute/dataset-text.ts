/**
 * The bag of words of a `text` field, as the built-in spam dataset does it (`dataset-spam.ts`):
 * lower-cased tokens of 2–25 characters from `[a-z0-9$!'_-]`, the `vocabSize` tokens of highest
 * document frequency in the training split (ties by token, ascending), and per document the
 * tf-idf vector `(1 + ln tf) · (ln((1 + N) / (1 + df)) + 1)`, L2-normalised.
 */

/** The token pattern (also written to `flock.json`, so a predictor tokenises the same way). */
export const TOKEN_PATTERN = "[a-z0-9$!][a-z0-9$!'_-]{1,24}";

/** The vocabulary of a text field: its tokens (column order) and each one's idf. */
export interface Vocabulary {
  tokens: string[];
  idf: number[];
}

/** A document's tokens, lower-cased. */
export function tokenize(text: string): string[] {
  return text.toLowerCase().match(new RegExp(TOKEN_PATTERN, "g")) ?? [];
}

/** The {@link Vocabulary} of the training documents (each a token list). */
export function buildVocabulary(trainDocs: readonly string[][], vocabSize: number): Vocabulary {
  const df = new Map<string, number>();
  for (const doc of trainDocs) for (const token of new Set(doc)) df.set(token, (df.get(token) ?? 0) + 1);
  const tokens = [...df.keys()]
    .sort((a, b) => df.get(b)! - df.get(a)! || (a < b ? -1 : a > b ? 1 : 0)) // keys of df
    .slice(0, vocabSize);
  const n = trainDocs.length;
  return { tokens, idf: tokens.map((t) => Math.log((1 + n) / (1 + df.get(t)!)) + 1) };
}

/** Documents' tf-idf vectors in CSR form; `write` adds row `index` into `out` at `offset`. */
export interface SparseRows {
  write(index: number, out: Float32Array, offset: number): void;
}

/** The tf-idf rows of documents over a vocabulary. */
export function tfidfRows(docs: readonly string[][], vocab: Vocabulary): SparseRows {
  const column = new Map(vocab.tokens.map((t, i) => [t, i]));
  const rowStart = new Int32Array(docs.length + 1);
  const cols: number[] = [];
  const vals: number[] = [];
  docs.forEach((doc, row) => {
    const counts = new Map<number, number>();
    for (const token of doc) {
      const col = column.get(token);
      if (col !== undefined) counts.set(col, (counts.get(col) ?? 0) + 1);
    }
    const touched = [...counts.keys()].sort((a, b) => a - b);
    const weights = touched.map((col) => (1 + Math.log(counts.get(col)!)) * vocab.idf[col]!);
    const norm = Math.sqrt(weights.reduce((sum, w) => sum + w * w, 0)) || 1;
    touched.forEach((col, k) => {
      cols.push(col);
      vals.push(weights[k]! / norm);
    });
    rowStart[row + 1] = cols.length;
  });
  const colIdx = Int32Array.from(cols);
  const values = Float32Array.from(vals);
  return {
    write: (index, out, offset) => {
      // index < docs.length (checked by the dataset); k runs inside that row's CSR range.
      for (let k = rowStart[index]!; k < rowStart[index + 1]!; k++) out[offset + colIdx[k]!] = values[k]!;
    },
  };
}
