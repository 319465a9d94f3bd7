import { makeDataset, type Dataset, type Split } from "./dataset-core.js";
import { readTable, type RawRecord, type RawTable } from "./dataset-read.js";
import {
  DATA_LIMITS,
  DEFAULT_TEST_FRACTION,
  DEFAULT_VOCAB_SIZE,
  datasetName,
  type FileDatasetSpec,
} from "./dataset-spec.js";
import { buildVocabulary, tfidfRows, tokenize, TOKEN_PATTERN, type SparseRows } from "./dataset-text.js";
import { BadDataError } from "./errors.js";
import { hash32, seededPermutation } from "./prng.js";
import { checkTokenBudget, resolveTokenizer, tokenRows, type TokenPreprocessing } from "./dataset-tokens.js";
import type { DatasetTokens } from "./dataset-core.js";

/** A numeric feature and the training-split statistics it is standardised with: `(x - mean) / std`. */
export interface FeatureStat {
  name: string;
  mean: number;
  /** Population standard deviation; 1 when the column is constant (it then only centres). */
  std: number;
}

/** Where a split's records came from (with `fraction` and `seed` when split off the training file). */
export interface SplitSource {
  source: string;
  sha256: string;
  records: number;
  fraction?: number;
  seed?: number;
}

/**
 * Everything needed to turn a raw record into a model input and an output back into a label:
 * what `flock.json` holds next to an exported model. Inputs are `[standardised features...,
 * vocabSize tf-idf columns]`, or with `tokens` the `maxLen` token ids of the text field.
 */
export interface Preprocessing {
  format: "csv" | "jsonl";
  /** Absent for an unlabelled corpus (a `tokenizer` dataset without label). */
  label?: string;
  /** Class names in output order: integers when every training label is one, else strings; [] unlabelled. */
  classes: (string | number)[];
  features: FeatureStat[];
  text?: {
    field: string;
    tokenPattern: string;
    lowercase: true;
    vocabSize: number;
    vocabulary: string[];
    idf: number[];
  };
  /** The text field as token ids (a `tokenizer` dataset; the tokenizer is the dataset's `tokens`). */
  tokens?: TokenPreprocessing;
  inputSize: number;
  train: SplitSource;
  test: SplitSource;
}

/** A dataset read from files, with the preprocessing it applied. */
export interface FileDataset extends Dataset {
  readonly preprocessing: Preprocessing;
}

/** One parsed record: its label key, raw numeric features and text. */
export interface Parsed {
  label: string;
  labelValue: string | number;
  x: number[];
  text: string;
  at: { file: string; line: number };
}

/** Seed of a `{ fraction }` split, derived from the job seed (fixed: part of the data's format). */
export function splitSeed(seed: number): number {
  return hash32((seed ^ 0x73706c74) >>> 0);
}

/**
 * Loads a {@link FileDatasetSpec}: reads the file(s), splits, checks every record, standardises
 * the features and builds the vocabulary from the training split. Deterministic: the same files
 * and seed give the same splits in the same (file) order, the same statistics and vocabulary on
 * every node. Throws {@link BadDataError} naming the file, line and field of the first problem.
 * `read` reads a source URL as a table (`readTable` for files; a stored dataset's cached shards).
 */
export function loadFileDataset(
  spec: FileDatasetSpec,
  seed: number,
  read: (url: string, format: "csv" | "jsonl") => RawTable = readTable,
): FileDataset {
  const started = performance.now();
  const trainTable = read(spec.source, spec.format);
  const inputs = inputColumns(spec, trainTable);
  const testTable = typeof spec.test === "string" ? read(spec.test, spec.format) : undefined;
  if (testTable) inputs.forEach((name) => requireColumn(spec, testTable, name));
  const fields = { label: spec.label, features: inputs.filter((c) => c !== spec.text), text: spec.text };
  // Every record is checked before the split, so a bad one is found whichever split it falls in.
  const parsed = trainTable.records.map((r) => parseRecord(trainTable.file, r, fields));
  const parsedTest = testTable?.records.map((r) => parseRecord(testTable.file, r, fields));
  const { trainRows, testRows, testSource } = split(spec, trainTable, parsed, testTable, parsedTest, seed);
  const { classes, labelsOf } = labelling(spec, trainTable.file, trainRows, testRows);
  const stats = featureStats(fields.features, trainRows);
  const text = textEncoding(spec, trainTable.file, trainRows, testRows.length);
  const inputSize = stats.length + text.width;
  const makeSplit = (rows: Parsed[]): Split =>
    denseAndText(standardise(rows, stats), stats.length, text.rows(rows), labelsOf(rows));
  const preprocessing: Preprocessing = {
    format: spec.format,
    ...(spec.label === undefined ? {} : { label: spec.label }),
    classes,
    features: stats,
    ...text.recorded,
    inputSize,
    train: { source: spec.source, sha256: trainTable.sha256, records: trainRows.length },
    test: { ...testSource, records: testRows.length },
  };
  const meta = {
    name: datasetName(spec),
    inputSize,
    inputShape: [inputSize],
    numClasses: classes.length,
    ...(text.tokens ? { tokens: text.tokens } : {}),
  };
  const train = makeSplit(trainRows);
  const test = makeSplit(testRows);
  return { ...makeDataset({ ...meta, loadMs: performance.now() - started }, train, test), preprocessing };
}

/**
 * The classes and each split's labels. An unlabelled corpus (no `label`, only with a tokenizer)
 * has no classes and labels all 0; a labelled test record must hold a training class.
 */
function labelling(
  spec: FileDatasetSpec,
  file: string,
  trainRows: Parsed[],
  testRows: Parsed[],
): { classes: (string | number)[]; labelsOf: (rows: Parsed[]) => Int32Array } {
  if (spec.label === undefined) return { classes: [], labelsOf: (rows) => new Int32Array(rows.length) };
  const classes = classList(file, trainRows);
  const index = new Map(classes.map((c, i) => [String(c), i]));
  const numeric = typeof classes[0] === "number";
  for (const row of testRows)
    if (!index.has(numeric ? numericKey(row.labelValue) : row.label))
      throw new BadDataError(
        row.at.file,
        `unknown class "${row.label}": not in the training split`,
        row.at.line,
        spec.label,
      );
  const labelsOf = (rows: Parsed[]): Int32Array =>
    Int32Array.from(rows, (r) => index.get(numeric ? numericKey(r.labelValue) : r.label)!); // checked above
  return { classes, labelsOf };
}

/** How the text field becomes inputs: `width` columns written by `rows`, and what the preprocessing records. */
interface TextEncoding {
  width: number;
  rows: (rows: Parsed[]) => SparseRows | undefined;
  recorded: Pick<Preprocessing, "text" | "tokens">;
  tokens?: DatasetTokens;
}

/** The text field's encoding: none, a tf-idf bag of words, or (with `tokenizer`) token ids. */
function textEncoding(
  spec: FileDatasetSpec,
  file: string,
  trainRows: Parsed[],
  testRecords: number,
): TextEncoding {
  const field = spec.text;
  if (field === undefined) return { width: 0, rows: () => undefined, recorded: {} };
  if (spec.tokenizer !== undefined) {
    const { tokenizer, maxLen } = resolveTokenizer(spec.tokenizer, () => trainRows.map((r) => r.text));
    checkTokenBudget(file, trainRows.length + testRecords, maxLen);
    const vocabulary = tokenizer.size;
    return {
      width: maxLen,
      rows: (rows) =>
        tokenRows(
          tokenizer,
          rows.map((r) => r.text),
          maxLen,
        ),
      recorded: { tokens: { field, maxLen, vocabulary, from: spec.tokenizer } },
      tokens: { maxLen, vocabulary, tokenizer: tokenizer.toJSON() },
    };
  }
  const vocabSize = spec.vocabSize ?? DEFAULT_VOCAB_SIZE;
  const vocab = buildVocabulary(
    trainRows.map((r) => tokenize(r.text)),
    vocabSize,
  );
  return {
    width: vocabSize,
    rows: (rows) =>
      tfidfRows(
        rows.map((r) => tokenize(r.text)),
        vocab,
      ),
    recorded: {
      text: {
        field,
        tokenPattern: TOKEN_PATTERN,
        lowercase: true,
        vocabSize,
        vocabulary: vocab.tokens,
        idf: vocab.idf,
      },
    },
  };
}

/** The input columns in order (features, then the text): the spec's, or every column but the label. */
export function inputColumns(spec: FileDatasetSpec, table: Pick<RawTable, "file" | "columns">): string[] {
  // A tokenizer dataset reads the text only (the spec refuses features with it).
  const features =
    spec.features ??
    (spec.tokenizer !== undefined ? [] : table.columns.filter((c) => c !== spec.label && c !== spec.text));
  if (features.length > DATA_LIMITS.features)
    throw new BadDataError(
      table.file,
      `has ${features.length} feature columns, more than ${DATA_LIMITS.features}`,
    );
  const inputs = [...features, ...(spec.text === undefined ? [] : [spec.text])];
  if (inputs.length === 0)
    throw new BadDataError(table.file, `has no input column besides the label "${spec.label ?? ""}"`);
  [...(spec.label === undefined ? [] : [spec.label]), ...inputs].forEach((name) =>
    requireColumn(spec, table, name),
  );
  return inputs;
}

/** A CSV's header must hold the column (a JSONL record's field is checked per record). */
export function requireColumn(
  spec: FileDatasetSpec,
  table: Pick<RawTable, "file" | "columns">,
  name: string,
): void {
  if (spec.format === "csv" && !table.columns.includes(name))
    throw new BadDataError(table.file, `no such column in the header (${table.columns.join(", ")})`, 1, name);
}

function split(
  spec: FileDatasetSpec,
  trainTable: RawTable,
  all: Parsed[],
  testTable: RawTable | undefined,
  parsedTest: Parsed[] | undefined,
  seed: number,
): { trainRows: Parsed[]; testRows: Parsed[]; testSource: Omit<SplitSource, "records"> } {
  if (all.length === 0) throw new BadDataError(trainTable.file, "the training split is empty (no records)");
  if (testTable && parsedTest) {
    if (parsedTest.length === 0)
      throw new BadDataError(testTable.file, "the test split is empty (no records)");
    return {
      trainRows: all,
      testRows: parsedTest,
      testSource: { source: testTable.file, sha256: testTable.sha256 },
    };
  }
  const fraction = typeof spec.test === "object" ? spec.test.fraction : DEFAULT_TEST_FRACTION;
  const k = Math.round(fraction * all.length);
  if (k === 0 || k === all.length)
    throw new BadDataError(
      trainTable.file,
      `a test fraction of ${fraction} of ${all.length} records leaves the ${k === 0 ? "test" : "training"} split empty`,
    );
  const perm = seededPermutation(all.length, splitSeed(seed));
  const isTest = new Uint8Array(all.length);
  for (let i = 0; i < k; i++) isTest[perm[i]!] = 1; // perm holds 0..n-1
  return {
    trainRows: all.filter((_, i) => isTest[i] === 0),
    testRows: all.filter((_, i) => isTest[i] === 1),
    testSource: { source: trainTable.file, sha256: trainTable.sha256, fraction, seed },
  };
}

/** Parses and checks one record; throws {@link BadDataError} naming the file, line and field. */
export function parseRecord(
  file: string,
  rec: RawRecord,
  fields: { label?: string | undefined; features: string[]; text?: string | undefined },
): Parsed {
  const fail = (field: string, problem: string): never => {
    throw new BadDataError(file, problem, rec.line, field);
  };
  const labelValue = fields.label === undefined ? 0 : parseLabel(rec, fields.label, fail);
  const x = fields.features.map((name) => {
    const v = rec.values[name];
    if (v === undefined) return fail(name, "missing field");
    if (v === null || (typeof v === "string" && v.trim() === "")) return fail(name, "missing value");
    const n = typeof v === "number" ? v : typeof v === "string" ? Number(v.trim()) : NaN;
    return Number.isFinite(n) ? n : fail(name, `${JSON.stringify(v)} is not a number`);
  });
  let text = "";
  if (fields.text !== undefined) {
    const v = rec.values[fields.text];
    if (v === undefined) fail(fields.text, "missing field");
    if (v !== null && typeof v !== "string")
      fail(fields.text, `text must be a string, got ${JSON.stringify(v)}`);
    text = typeof v === "string" ? v : "";
  }
  return { label: String(labelValue), labelValue, x, text, at: { file, line: rec.line } };
}

/** A record's label: a string (trimmed) or an integer. */
function parseLabel(
  rec: RawRecord,
  field: string,
  fail: (field: string, problem: string) => never,
): string | number {
  const raw = rec.values[field];
  if (raw === undefined || raw === null || (typeof raw === "string" && raw.trim() === ""))
    return fail(field, "missing label");
  if (typeof raw === "string") return raw.trim();
  if (typeof raw === "number" && Number.isInteger(raw)) return raw;
  return fail(field, `a label is a string or an integer, got ${JSON.stringify(raw)}`);
}

/** A label as an integer class key ("07" and 7 are class 7); "NaN" when it is not an integer. */
export function numericKey(v: string | number): string {
  const n = typeof v === "number" ? v : /^[+-]?\d+$/.test(v) ? Number(v) : NaN;
  return String(n);
}

/**
 * The training split's classes, sorted: integers when every label is one, else strings. Depends
 * only on the distinct `label`s of `rows`, so one representative row per label gives the same list.
 */
export function classList(file: string, rows: Parsed[]): (string | number)[] {
  const numeric = rows.every((r) => numericKey(r.labelValue) !== "NaN");
  const keys = [...new Set(rows.map((r) => (numeric ? numericKey(r.labelValue) : r.label)))];
  if (keys.length < 2)
    throw new BadDataError(file, `the training split has ${keys.length} class(es); at least 2 are needed`);
  if (keys.length > DATA_LIMITS.classes)
    throw new BadDataError(
      file,
      `the training split has ${keys.length} classes, more than ${DATA_LIMITS.classes}`,
    );
  return numeric ? keys.map(Number).sort((a, b) => a - b) : keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function featureStats(names: string[], rows: Parsed[]): FeatureStat[] {
  if (rows.length * names.length > DATA_LIMITS.denseValues)
    throw new BadDataError(
      rows[0]?.at.file ?? "?",
      `${rows.length} × ${names.length} feature values exceed ${DATA_LIMITS.denseValues}`,
    );
  return names.map((name, j) => {
    let sum = 0;
    for (const r of rows) sum += r.x[j]!; // every row has names.length values
    const mean = sum / rows.length;
    let sq = 0;
    for (const r of rows) sq += (r.x[j]! - mean) ** 2;
    const std = Math.sqrt(sq / rows.length);
    return { name, mean, std: std > 0 && Number.isFinite(std) ? std : 1 };
  });
}

function standardise(rows: Parsed[], stats: FeatureStat[]): Float32Array {
  const out = new Float32Array(rows.length * stats.length);
  rows.forEach((r, i) => stats.forEach((s, j) => (out[i * stats.length + j] = (r.x[j]! - s.mean) / s.std)));
  return out;
}

function denseAndText(
  dense: Float32Array,
  width: number,
  text: SparseRows | undefined,
  labels: Int32Array,
): Split {
  return {
    labels,
    write: (index, out, offset) => {
      out.set(dense.subarray(index * width, (index + 1) * width), offset);
      text?.write(index, out, offset + width);
    },
  };
}
