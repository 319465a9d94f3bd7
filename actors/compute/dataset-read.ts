import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CsvError, parse } from "csv-parse/sync";
import { BadDataError } from "./errors.js";
import { DATA_LIMITS, fileUrlProblem } from "./dataset-spec.js";

/** One record of a file: its values by column or field name, and the line it ends on. */
export interface RawRecord {
  line: number;
  values: Readonly<Record<string, unknown>>;
}

/** A file's records in file order, with its column names (CSV header; JSONL: the first record's keys). */
export interface RawTable {
  /** The file's path, as errors name it. */
  file: string;
  columns: string[];
  records: RawRecord[];
  /** sha256 of the file's bytes (hex), so a model says exactly what it was trained on. */
  sha256: string;
}

/**
 * The path of a `file://` URL whose file exists, is a regular file and is within
 * {@link DATA_LIMITS.fileBytes}; throws {@link BadDataError} otherwise. Cheap (one stat).
 */
export function checkDataFile(url: string): string {
  const problem = fileUrlProblem(url);
  if (problem) throw new BadDataError(url, problem);
  const file = fileURLToPath(url);
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new BadDataError(file, "is not a regular file");
    size = stat.size;
  } catch (error) {
    if (error instanceof BadDataError) throw error;
    throw new BadDataError(file, `cannot be read: ${(error as Error).message}`, undefined, undefined, {
      cause: error,
    });
  }
  if (size > DATA_LIMITS.fileBytes)
    throw new BadDataError(file, `is ${size} bytes, more than the limit of ${DATA_LIMITS.fileBytes}`);
  return file;
}

/** Reads a CSV or JSONL file whole; throws {@link BadDataError} naming the file, line and field. */
export function readTable(url: string, format: "csv" | "jsonl"): RawTable {
  const file = checkDataFile(url);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new BadDataError(file, `cannot be read: ${(error as Error).message}`, undefined, undefined, {
      cause: error,
    });
  }
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const text = bytes.toString("utf8");
  const table = format === "csv" ? readCsv(file, text) : readJsonl(file, text);
  if (table.records.length > DATA_LIMITS.records)
    throw new BadDataError(file, `has more than ${DATA_LIMITS.records} records (the limit)`);
  return { file, ...table, sha256 };
}

/**
 * The csv-parse options every CSV read uses (whole or streamed), with the header check: names
 * trimmed, none empty, none twice (a {@link BadDataError} on line 1). `onColumns` receives them.
 */
export function csvOptions(file: string, onColumns: (columns: string[]) => void) {
  return {
    bom: true,
    info: true,
    skip_empty_lines: true,
    columns: (header: string[]) => {
      const columns = header.map((h) => h.trim());
      const seen = new Set<string>();
      for (const name of columns) {
        if (name === "") throw new BadDataError(file, "a column has no name in the header", 1);
        if (seen.has(name)) throw new BadDataError(file, "appears twice in the header", 1, name);
        seen.add(name);
      }
      onColumns(columns);
      return columns;
    },
  } as const;
}

/** A csv-parse row with `info: true`. */
export interface CsvRow {
  record: Record<string, string>;
  info: { lines: number };
}

/** The {@link BadDataError} for an error a CSV parse threw (a ragged row or bad CSV, by line); others as they are. */
export function csvError(file: string, error: unknown): unknown {
  if (error instanceof BadDataError || !(error instanceof CsvError)) return error;
  const line = typeof error.lines === "number" ? error.lines : undefined;
  const problem =
    error.code === "CSV_RECORD_INCONSISTENT_COLUMNS" || error.code === "CSV_RECORD_INCONSISTENT_FIELDS_LENGTH"
      ? `ragged row: ${error.message}`
      : `is not valid CSV: ${error.message}`;
  return new BadDataError(file, problem, line, undefined, { cause: error });
}

function readCsv(file: string, text: string): Pick<RawTable, "columns" | "records"> {
  let columns: string[] = [];
  let rows: CsvRow[];
  try {
    rows = parse(text, {
      ...csvOptions(file, (c) => (columns = c)),
      // At most one record past the limit is kept: enough to say the file is too long.
      to: DATA_LIMITS.records + 1,
    }) as CsvRow[];
  } catch (error) {
    throw csvError(file, error);
  }
  if (columns.length === 0) throw new BadDataError(file, "has no header row");
  return { columns, records: rows.map((r) => ({ line: r.info.lines, values: r.record })) };
}

/**
 * One JSONL line (1-based `line`) as a record; undefined for a blank one. Throws
 * {@link BadDataError} naming the line when it is not JSON or not a JSON object.
 */
export function jsonlRecord(file: string, text: string, line: number): RawRecord | undefined {
  const source = text.trim();
  if (source === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (error) {
    throw new BadDataError(file, `is not valid JSON: ${(error as Error).message}`, line);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new BadDataError(file, "is not a JSON object", line);
  return { line, values: value as Record<string, unknown> };
}

function readJsonl(file: string, text: string): Pick<RawTable, "columns" | "records"> {
  const records: RawRecord[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length && records.length <= DATA_LIMITS.records; i++) {
    const record = jsonlRecord(file, lines[i]!, i + 1); // i < lines.length
    if (record) records.push(record);
  }
  return { columns: Object.keys(records[0]?.values ?? {}), records };
}
