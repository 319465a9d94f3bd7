/**
 * `flock data put FILE` for a CSV or JSONL file of any size: the file is read as a stream, twice.
 * Pass 1 ({@link scanFile}) checks every record with the very checks and messages `readTable`
 * uses (header, ragged rows, bad JSON, a line that is not an object: named by file and line),
 * counts the records, hashes the file and cuts the shards only to learn their sizes and hashes,
 * so nothing is uploaded when the file holds bad data and the manifest is known before the first
 * upload. Pass 2 ({@link putScanned}) cuts the shards again, uploads each as it is cut (checked
 * against pass 1's: a file that changed in between is refused), and writes the manifest last.
 * Memory holds about one shard plus the parser's buffers, whatever the file's size; the shards and
 * manifest are byte for byte those `putDataset(readTable(…))` writes for a file that fits in memory.
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parse } from "csv-parse";
import type { BlobStore } from "../../runtime/store/types.js";
import { csvError, csvOptions, jsonlRecord, type CsvRow, type RawRecord } from "./dataset-read.js";
import {
  buildManifest,
  DEFAULT_SHARD_LIMITS,
  MAX_SHARDS,
  ShardCutter,
  type CutShard,
  type DataManifest,
  type ShardLimits,
  type ShardSummary,
} from "./dataset-shards.js";
import { preparePut, ShardMismatchError, uploadShards, type PutProgress } from "./dataset-store.js";
import { BadDataError } from "./errors.js";

/** Longest JSONL line read (a line is held whole while it is parsed). */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

/** How a file is streamed: the shard limits, and the read chunk size (small in tests, to cross chunk boundaries). */
export interface StreamOptions {
  limits?: ShardLimits;
  chunkBytes?: number;
  /** Pass 1's progress: bytes read of the file's size. */
  onScan?: (bytesRead: number, fileBytes: number) => void;
}

/** What pass 1 learnt of a file: its columns, size, hash and the shards pass 2 will cut. */
export interface FileScan {
  file: string;
  format: "csv" | "jsonl";
  columns: string[];
  records: number;
  /** sha256 of the file's bytes (hex), as `readTable` records it. */
  sha256: string;
  fileBytes: number;
  shards: ShardSummary[];
  limits: ShardLimits;
}

/** The running totals of one streamed read of a file. */
interface ReadState {
  hash: Hash;
  bytes: number;
  columns: string[];
}

/**
 * Pass 1: reads the whole file, checking every record, and says what pass 2 will upload. Throws
 * {@link BadDataError} naming the file (and line) for bad data, an empty file, or a file that
 * would need more than {@link MAX_SHARDS} shards.
 */
export async function scanFile(
  path: string,
  format: "csv" | "jsonl",
  opts: StreamOptions = {},
): Promise<FileScan> {
  const fileBytes = regularFileSize(path);
  const limits = opts.limits ?? DEFAULT_SHARD_LIMITS;
  const cutter = new ShardCutter(limits);
  const shards: ShardSummary[] = [];
  const keep = (s: CutShard | undefined): void => {
    if (!s) return;
    if (shards.length >= MAX_SHARDS)
      throw new BadDataError(
        path,
        `needs more than ${MAX_SHARDS} shards (the most a dataset holds): give larger shards (--shard-kib, --shard-records)`,
      );
    shards.push({ first: s.first, records: s.records, bytes: s.bytes.length, sha256: s.sha256 });
  };
  const state = newState();
  for await (const record of fileRecords(path, format, state, opts.chunkBytes, (n) =>
    opts.onScan?.(n, fileBytes),
  ))
    keep(cutter.add(record));
  keep(cutter.finish());
  const records = shards.reduce((n, s) => n + s.records, 0);
  if (records === 0) throw new BadDataError(path, "has no records");
  return {
    file: path,
    format,
    columns: state.columns,
    records,
    sha256: state.hash.digest("hex"),
    fileBytes: state.bytes,
    shards,
    limits,
  };
}

/** Options of {@link putScanned}. */
export interface PutScannedOptions {
  chunkBytes?: number;
  onProgress?: (p: PutProgress) => void;
  now?: () => Date;
}

/**
 * Pass 2: stores the scanned file as dataset `name`, cutting and uploading one shard at a time,
 * the manifest (built from the scan) last. Refuses a bad or taken name; when an upload fails or
 * the file no longer matches the scan, the shards written are deleted and the error rethrown.
 */
export async function putScanned(
  blobs: BlobStore,
  name: string,
  scan: FileScan,
  opts: PutScannedOptions = {},
): Promise<DataManifest> {
  const shardName = await preparePut(blobs, name);
  const now = (opts.now ?? (() => new Date()))();
  const manifest = buildManifest(name, scan.format, scan, scan.fileBytes, scan.shards, shardName, now);
  return uploadShards(blobs, manifest, cutFile(scan, opts.chunkBytes), opts.onProgress);
}

/** Pass 1 then pass 2: checks the whole file, then stores it (see {@link scanFile}, {@link putScanned}). */
export async function putFileStreamed(
  blobs: BlobStore,
  name: string,
  path: string,
  format: "csv" | "jsonl",
  opts: StreamOptions & PutScannedOptions = {},
): Promise<DataManifest> {
  return putScanned(blobs, name, await scanFile(path, format, opts), opts);
}

/** The shards of a scanned file, cut as it is read again; throws when the file is no longer the one scanned. */
async function* cutFile(scan: FileScan, chunkBytes: number | undefined): AsyncGenerator<CutShard> {
  const cutter = new ShardCutter(scan.limits);
  const state = newState();
  for await (const record of fileRecords(scan.file, scan.format, state, chunkBytes)) {
    const shard = cutter.add(record);
    if (shard) yield shard;
  }
  const last = cutter.finish();
  if (last) yield last;
  if (state.hash.digest("hex") !== scan.sha256)
    throw new ShardMismatchError(
      `${scan.file}: the file changed while it was being put (its sha256 differs)`,
    );
}

const newState = (): ReadState => ({ hash: createHash("sha256"), bytes: 0, columns: [] });

/** The size of a regular file; throws {@link BadDataError} when `path` is not one. */
function regularFileSize(path: string): number {
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new BadDataError(path, "is not a regular file");
    return stat.size;
  } catch (error) {
    throw readError(path, error);
  }
}

/** A read error as {@link BadDataError} (a CSV error by line, a file that cannot be read); others as they are. */
function readError(file: string, error: unknown): unknown {
  const mapped = csvError(file, error);
  if (mapped !== error || error instanceof BadDataError) return mapped;
  if (error instanceof Error && "code" in error && typeof error.code === "string" && "syscall" in error)
    return new BadDataError(file, `cannot be read: ${error.message}`, undefined, undefined, { cause: error });
  return error;
}

/** A file's records in file order, streamed; `state` gets the hash, size and columns as it goes. */
async function* fileRecords(
  file: string,
  format: "csv" | "jsonl",
  state: ReadState,
  chunkBytes: number | undefined,
  onRead?: (bytesRead: number) => void,
): AsyncGenerator<RawRecord> {
  const source = createReadStream(file, chunkBytes === undefined ? {} : { highWaterMark: chunkBytes });
  const counted = (chunk: Buffer): Buffer => {
    state.hash.update(chunk);
    state.bytes += chunk.length;
    onRead?.(state.bytes);
    return chunk;
  };
  try {
    if (format === "csv") yield* csvRecords(file, source, counted, state);
    else yield* jsonlRecords(file, source, counted, state);
  } catch (error) {
    throw readError(file, error);
  } finally {
    source.destroy();
  }
}

/** CSV records through csv-parse's streaming API, with `readTable`'s options and header check. */
async function* csvRecords(
  file: string,
  source: NodeJS.ReadableStream,
  counted: (chunk: Buffer) => Buffer,
  state: ReadState,
): AsyncGenerator<RawRecord> {
  const parser = parse(csvOptions(file, (c) => (state.columns = c)));
  const tap = new Transform({ transform: (chunk: Buffer, _enc, done) => done(null, counted(chunk)) });
  const piped = pipeline(source, tap, parser);
  // Its rejection is the iteration's error (or a premature close when the reader stops early): awaited below.
  piped.catch(() => undefined);
  try {
    for await (const row of parser as AsyncIterable<CsvRow>)
      yield { line: row.info.lines, values: row.record };
    await piped;
  } finally {
    parser.destroy();
  }
  if (state.columns.length === 0) throw new BadDataError(file, "has no header row");
}

/** JSONL records, split on `\n` as `readTable` splits them (so lines are numbered alike). */
async function* jsonlRecords(
  file: string,
  source: AsyncIterable<Buffer | string>,
  counted: (chunk: Buffer) => Buffer,
  state: ReadState,
): AsyncGenerator<RawRecord> {
  let line = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const take = (last: Buffer): RawRecord | undefined => {
    // `\n` never occurs inside a UTF-8 sequence, so decoding line by line decodes as a whole read does.
    const text = Buffer.concat([...pending, last]).toString("utf8");
    pending = [];
    pendingBytes = 0;
    const record = jsonlRecord(file, text, ++line);
    if (record && first) state.columns = Object.keys(record.values); // readTable: the first record's keys
    if (record) first = false;
    return record;
  };
  let first = true;
  for await (const raw of source) {
    const chunk = counted(typeof raw === "string" ? Buffer.from(raw) : raw);
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      const record = take(chunk.subarray(start, nl));
      start = nl + 1;
      if (record) yield record;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_LINE_BYTES)
        throw new BadDataError(file, `is longer than ${MAX_LINE_BYTES} bytes`, line + 1);
    }
  }
  const record = take(Buffer.alloc(0));
  if (record) yield record;
}
