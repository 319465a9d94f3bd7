/**
 * A stored dataset's shards and manifest, as pure data: cutting a file's records into shards,
 * encoding and decoding one shard, the manifest's schema and its checks, and the two-level
 * (shard, then in-shard) sample order. No I/O; `dataset-store.ts` moves the bytes.
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { BadDataError } from "./errors.js";
import type { RawRecord, RawTable } from "./dataset-read.js";
import { hash32, seededPermutation } from "./prng.js";

/** A stored dataset's name: letters, digits, `_` and `-` (no dots: object names are built from it). */
export const DATASET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Why `name` cannot name a stored dataset, or undefined when it can. */
export function datasetNameProblem(name: string): string | undefined {
  return DATASET_NAME_PATTERN.test(name)
    ? undefined
    : `"${name}" is not a valid dataset name: 1-64 letters, digits, _ or -, starting with a letter or digit`;
}

/** The `flock://NAME` URL of a stored dataset. */
export function flockUrl(name: string): string {
  return `flock://${name}`;
}

/** The dataset name of a `flock://NAME` URL, or undefined when `url` is not one (or names badly). */
export function flockUrlName(url: string): string | undefined {
  if (!url.startsWith("flock://")) return undefined;
  const name = url.slice("flock://".length);
  return datasetNameProblem(name) === undefined ? name : undefined;
}

/** How shards are cut: a shard closes at `maxRecords` records or once it holds `maxBytes` bytes. */
export interface ShardLimits {
  maxRecords: number;
  maxBytes: number;
}

/** Default shard size: about 1 MiB, at most 50 000 records. */
export const DEFAULT_SHARD_LIMITS: ShardLimits = { maxRecords: 50_000, maxBytes: 1024 * 1024 };

/** One shard ready to upload: its encoded bytes, the records it holds and their hash. */
export interface CutShard {
  /** Position of its first record in the dataset (file order). */
  first: number;
  records: number;
  bytes: Uint8Array;
  sha256: string;
}

/** sha256 of bytes, hex. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * One record as a shard line: `[line, values]`, JSON. Values are what the parser produced (CSV:
 * strings; JSONL: JSON values), so decoding gives back exactly the records a `file://` read gives,
 * and training from the store sees the same samples in the same order.
 */
function encodeRecord(r: RawRecord): string {
  return `${JSON.stringify([r.line, r.values])}\n`;
}

/**
 * Cuts records fed one at a time (in file order) into shards within `limits`: what
 * {@link cutShards} does over an array, for a file streamed record by record. It holds only the
 * open shard's lines.
 */
export class ShardCutter {
  private lines: string[] = [];
  private bytes = 0;
  private first = 0;
  constructor(private readonly limits: ShardLimits = DEFAULT_SHARD_LIMITS) {}

  /** Adds the next record; the shard it closes, if it closes one. */
  add(r: RawRecord): CutShard | undefined {
    const line = encodeRecord(r);
    this.lines.push(line);
    this.bytes += Buffer.byteLength(line, "utf8");
    return this.lines.length >= this.limits.maxRecords || this.bytes >= this.limits.maxBytes
      ? this.close()
      : undefined;
  }

  /** The last shard, once every record was added (undefined when it would be empty). */
  finish(): CutShard | undefined {
    return this.close();
  }

  private close(): CutShard | undefined {
    if (this.lines.length === 0) return undefined;
    const data = Buffer.from(this.lines.join(""), "utf8");
    const shard = {
      first: this.first,
      records: this.lines.length,
      bytes: new Uint8Array(data),
      sha256: sha256Hex(data),
    };
    this.first += this.lines.length;
    this.lines = [];
    this.bytes = 0;
    return shard;
  }
}

/** Cuts records (in file order) into shards within `limits`; every record in exactly one shard. */
export function cutShards(
  records: readonly RawRecord[],
  limits: ShardLimits = DEFAULT_SHARD_LIMITS,
): CutShard[] {
  const cutter = new ShardCutter(limits);
  const out: CutShard[] = [];
  for (const r of records) {
    const shard = cutter.add(r);
    if (shard) out.push(shard);
  }
  const last = cutter.finish();
  if (last) out.push(last);
  return out;
}

const Line = z.tuple([z.number().int().min(1), z.record(z.string(), z.unknown())]);

/**
 * Decodes a shard's bytes into its records; throws {@link BadDataError} naming `file` when the
 * bytes are not a shard of `expected` records (a store holds what a submitter wrote: hostile).
 */
export function decodeShard(file: string, bytes: Uint8Array, expected: number): RawRecord[] {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  const lines = text.split("\n");
  if (lines.pop() !== "") throw new BadDataError(file, "a shard does not end with a newline");
  if (lines.length !== expected)
    throw new BadDataError(file, `a shard holds ${lines.length} records, its manifest says ${expected}`);
  return lines.map((source) => {
    let value: unknown;
    try {
      value = JSON.parse(source);
    } catch (error) {
      throw new BadDataError(file, `a shard line is not JSON: ${(error as Error).message}`);
    }
    const parsed = Line.safeParse(value);
    if (!parsed.success) throw new BadDataError(file, `a shard line is not [line, record]`);
    return { line: parsed.data[0], values: parsed.data[1] };
  });
}

/** Most shards in one dataset (the manifest's bound; with the default 1 MiB shards, about 100 GiB). */
export const MAX_SHARDS = 100_000;

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** One shard in a manifest: its object name, record range and hash. */
export const ShardEntry = z.strictObject({
  name: z.string().min(1).max(256),
  first: Count,
  records: z.number().int().min(1),
  bytes: Count,
  sha256: Hex64,
});
/** One shard in a manifest. */
export type ShardEntry = z.infer<typeof ShardEntry>;

/**
 * A stored dataset's manifest, written after every shard: its presence means the dataset is
 * complete. `sha256` digests the shard hashes in order (see {@link shardsDigest}); `file` is
 * the uploaded file, whose sha256 a model trained on it records, as a `file://` read would.
 */
export const DataManifest = z
  .strictObject({
    v: z.literal(1),
    name: z.string().regex(DATASET_NAME_PATTERN),
    /** `images`: one record per image, `{ class, file, data }` (see `dataset-images-store.ts`). */
    format: z.enum(["csv", "jsonl", "images"]),
    columns: z.array(z.string().max(256)).max(4096),
    records: Count,
    bytes: Count,
    createdAt: z.iso.datetime(),
    file: z.strictObject({ name: z.string().max(4096), sha256: Hex64, bytes: Count }),
    shards: z.array(ShardEntry).max(MAX_SHARDS),
    sha256: Hex64,
  })
  .superRefine((m, ctx) => {
    const problem = manifestProblem(m.records, m.bytes, m.shards, m.sha256);
    if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["shards"] });
  });
/** A stored dataset's manifest. */
export type DataManifest = z.infer<typeof DataManifest>;

/** The digest of a dataset's content: sha256 over its shard hashes in order. */
export function shardsDigest(shards: readonly Pick<ShardEntry, "sha256">[]): string {
  return sha256Hex(shards.map((s) => s.sha256).join("\n"));
}

/** Why shard entries do not tile `records` from 0 or do not match the totals, or undefined. */
function manifestProblem(records: number, bytes: number, shards: readonly ShardEntry[], digest: string) {
  let next = 0;
  let sum = 0;
  for (const [i, s] of shards.entries()) {
    if (s.first !== next) return `shard ${i} starts at record ${s.first}, expected ${next}`;
    next += s.records;
    sum += s.bytes;
  }
  if (next !== records) return `the shards hold ${next} records, the manifest says ${records}`;
  if (sum !== bytes) return `the shards hold ${sum} bytes, the manifest says ${bytes}`;
  if (shardsDigest(shards) !== digest) return "the digest does not match the shard hashes";
  return undefined;
}

/** A shard as a manifest lists it, before it is named: its record range, size and hash. */
export type ShardSummary = Pick<CutShard, "first" | "records" | "sha256"> & { bytes: number };

/** The manifest of `table` cut into `shards`, whose object names `shardName(i)` gives. */
export function buildManifest(
  name: string,
  format: DataManifest["format"],
  table: Pick<RawTable, "file" | "columns" | "sha256">,
  fileBytes: number,
  shards: readonly (CutShard | ShardSummary)[],
  shardName: (index: number) => string,
  now: Date,
): DataManifest {
  const entries = shards.map((s, i) => ({
    name: shardName(i),
    first: s.first,
    records: s.records,
    bytes: typeof s.bytes === "number" ? s.bytes : s.bytes.length,
    sha256: s.sha256,
  }));
  return DataManifest.parse({
    v: 1,
    name,
    format,
    columns: table.columns,
    records: entries.reduce((n, s) => n + s.records, 0),
    bytes: entries.reduce((n, s) => n + s.bytes, 0),
    createdAt: now.toISOString(),
    file: { name: table.file.slice(table.file.lastIndexOf("/") + 1), sha256: table.sha256, bytes: fileBytes },
    shards: entries,
    sha256: shardsDigest(entries),
  });
}

/** Throws {@link BadDataError} naming `file` when `bytes` do not hash to `sha256`. */
export function verifyShard(file: string, bytes: Uint8Array, sha256: string): void {
  const actual = sha256Hex(bytes);
  if (actual !== sha256)
    throw new BadDataError(file, `a shard's sha256 is ${actual}, its manifest says ${sha256}`);
}

/** The indices of the shards holding any of the records `[start, end)` (shards sorted by `first`). */
export function shardsForRange(
  shards: readonly Pick<ShardEntry, "first" | "records">[],
  start: number,
  end: number,
) {
  const out: number[] = [];
  shards.forEach((s, i) => {
    if (s.first < end && s.first + s.records > start) out.push(i);
  });
  return out;
}

/**
 * A sample order over a sharded dataset for one epoch: the shards in a seeded order, then the
 * records of each shard in a seeded order, so consecutive positions stay within one shard and a
 * node streaming the positions it is handed needs about one shard at a time (MosaicML's
 * StreamingDataset does the same). It depends only on the shard sizes and the seed, never on
 * the number of workers: positions are what the ledger hands out, so a resize changes who takes
 * which position, not which sample is at a position.
 */
export function shardedOrder(shardSizes: readonly number[], seed: number): Int32Array {
  const total = shardSizes.reduce((n, s) => n + s, 0);
  const firsts: number[] = [];
  shardSizes.reduce((first, size) => (firsts.push(first), first + size), 0);
  const out = new Int32Array(total);
  let at = 0;
  for (const shard of seededPermutation(shardSizes.length, seed)) {
    const size = shardSizes[shard]!; // the permutation holds 0..length-1
    const inner = seededPermutation(size, hash32((seed ^ Math.imul(shard + 1, 0x9e3779b1)) >>> 0));
    for (const i of inner) out[at++] = firsts[shard]! + i;
  }
  return out;
}
