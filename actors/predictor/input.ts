/**
 * The records to predict, read in the model's training format and checked as training checks
 * them, and each record turned into the model input exactly as `dataset-file.ts` builds it:
 * `(x - mean) / std` per numeric feature (in float64, stored as float32), then the L2-normalised
 * tf-idf columns of the text field over the training vocabulary (`dataset-text.ts`), or the
 * text's `maxLen` token ids by the model's tokenizer (`dataset-tokens.ts`, the dataset's encoder).
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { readTable, type RawRecord } from "../compute/dataset-read.js";
import type { Preprocessing } from "../compute/dataset-file.js";
import { tfidfRows, tokenize } from "../compute/dataset-text.js";
import { tokenRows } from "../compute/dataset-tokens.js";
import { BadDataError } from "../compute/errors.js";
import { WordPieceTokenizer, type TokenizerJson } from "../compute/tokenizer.js";

/**
 * The parsed input: per record its raw numeric features (row-major, `features` per record), its
 * text (when the model reads one), and the index of its label among the model's classes (-1: no
 * label, or a class the model does not know; -2 when the file has no label at all).
 */
export interface PredictInput {
  file: string;
  n: number;
  /** Raw (unstandardised) feature values, `n × features`. */
  x: Float64Array;
  /** Text of each record (empty for a null field), when the model has a text field. */
  text?: string[];
  /** Class index of each record's label; undefined when the input carries no label. */
  truth?: Int32Array;
}

/** A `file://` URL for a path or URL the user typed. */
export function inputUrl(pathOrUrl: string): string {
  if (pathOrUrl.startsWith("file://")) return pathOrUrl;
  return pathToFileURL(isAbsolute(pathOrUrl) ? pathOrUrl : resolve(pathOrUrl)).href;
}

/**
 * Reads and checks `pathOrUrl` against `p`: every feature present and numeric, the text a string,
 * rows not ragged; throws {@link BadDataError} naming the file, line and field of the first
 * problem, before anything is predicted. A label column is not needed; when present it is read
 * for scoring only.
 */
export function readPredictInput(pathOrUrl: string, p: Preprocessing): PredictInput {
  const table = readTable(inputUrl(pathOrUrl), p.format);
  if (table.records.length === 0) throw new BadDataError(table.file, "has no records to predict");
  const names = p.features.map((f) => f.name);
  const textName = p.text?.field ?? p.tokens?.field;
  if (p.format === "csv")
    for (const name of [...names, ...(textName === undefined ? [] : [textName])])
      if (!table.columns.includes(name))
        throw new BadDataError(
          table.file,
          `no such column in the header (${table.columns.join(", ")})`,
          1,
          name,
        );
  const n = table.records.length;
  const x = new Float64Array(n * names.length);
  const text: string[] | undefined = textName === undefined ? undefined : [];
  const label = p.label;
  const labelled =
    label !== undefined &&
    (p.format === "csv" ? table.columns.includes(label) : table.records.some((r) => label in r.values));
  const truth = labelled ? new Int32Array(n) : undefined;
  const classIndex = new Map(p.classes.map((c, i) => [String(c), i]));
  table.records.forEach((rec, i) => {
    names.forEach((name, j) => (x[i * names.length + j] = numericField(table.file, rec, name)));
    if (text && textName !== undefined) text.push(textField(table.file, rec, textName));
    if (truth && label !== undefined) truth[i] = labelIndex(rec.values[label], classIndex);
  });
  return { file: table.file, n, x, ...(text ? { text } : {}), ...(truth ? { truth } : {}) };
}

/** A numeric feature of a record, as `dataset-file.ts` parses it. */
function numericField(file: string, rec: RawRecord, name: string): number {
  const v = rec.values[name];
  if (v === undefined) throw new BadDataError(file, "missing field", rec.line, name);
  if (v === null || (typeof v === "string" && v.trim() === ""))
    throw new BadDataError(file, "missing value", rec.line, name);
  const n = typeof v === "number" ? v : typeof v === "string" ? Number(v.trim()) : NaN;
  if (!Number.isFinite(n))
    throw new BadDataError(file, `${JSON.stringify(v)} is not a number`, rec.line, name);
  return n;
}

/** The text field of a record (null reads as empty, as in training). */
function textField(file: string, rec: RawRecord, name: string): string {
  const v = rec.values[name];
  if (v === undefined) throw new BadDataError(file, "missing field", rec.line, name);
  if (v !== null && typeof v !== "string")
    throw new BadDataError(file, `text must be a string, got ${JSON.stringify(v)}`, rec.line, name);
  return typeof v === "string" ? v : "";
}

/** A label's class index: integer classes match "07" and 7 alike, as training does; -1 when unknown. */
function labelIndex(raw: unknown, classIndex: ReadonlyMap<string, number>): number {
  if (typeof raw === "number" && Number.isInteger(raw)) return classIndex.get(String(raw)) ?? -1;
  if (typeof raw !== "string" || raw.trim() === "") return -1;
  const s = raw.trim();
  const direct = classIndex.get(s);
  if (direct !== undefined) return direct;
  return /^[+-]?\d+$/.test(s) ? (classIndex.get(String(Number(s))) ?? -1) : -1;
}

/** Opened tokenizers by their JSON (one per model; the JSON object is the model's, kept while it is open). */
const tokenizers = new WeakMap<TokenizerJson, WordPieceTokenizer>();

function tokenizerOf(json: TokenizerJson): WordPieceTokenizer {
  let t = tokenizers.get(json);
  if (!t) tokenizers.set(json, (t = WordPieceTokenizer.fromJSON(json)));
  return t;
}

/**
 * The model inputs of records `[start, end)` of `input`, row-major (`(end - start) × inputSize`):
 * pure, so the client and every predictor build the same bits. A model of token ids needs its
 * `tokenizer` (from `flock.json`).
 */
export function recordsToInputs(
  p: Preprocessing,
  input: Pick<PredictInput, "x" | "text">,
  start: number,
  end: number,
  tokenizer?: TokenizerJson,
): Float32Array {
  const n = end - start;
  const width = p.features.length;
  const out = new Float32Array(n * p.inputSize);
  for (let i = 0; i < n; i++)
    p.features.forEach(
      (s, j) => (out[i * p.inputSize + j] = (input.x[(start + i) * width + j]! - s.mean) / s.std),
    );
  if (p.text && input.text) {
    const vocab = { tokens: p.text.vocabulary, idf: p.text.idf };
    const rows = tfidfRows(
      input.text.slice(start, end).map((t) => tokenize(t)),
      vocab,
    );
    for (let i = 0; i < n; i++) rows.write(i, out, i * p.inputSize + width);
  }
  if (p.tokens && input.text) {
    if (!tokenizer) throw new Error("a model of token ids needs its tokenizer (flock.json)");
    const rows = tokenRows(tokenizerOf(tokenizer), input.text.slice(start, end), p.tokens.maxLen);
    for (let i = 0; i < n; i++) rows.write(i, out, i * p.inputSize + width);
  }
  return out;
}
