/**
 * A node's cache of stored-dataset shards: files named by their sha256 in a local folder, checked
 * against the hash on every read (a corrupt or truncated file is fetched again), written by
 * rename so a reader never sees half a file. The actor side (which reaches the object store)
 * fetches the shards a job needs ({@link fetchStoredSources}); the compute thread then reads them
 * from the folder ({@link readStoredTable}) with no store access.
 *
 * The folder is bounded (`DataAccess.maxBytes`, default {@link DEFAULT_CACHE_BYTES}; the daemon's
 * `--data-cache-mib`): after each fetch, least recently used shards are deleted until the folder
 * fits, sparing the shards of the datasets just fetched and any shard used (fetched or read) in
 * the last {@link IN_USE_MS} — a job on this node may be reading it (see `dataset-cache-evict.ts`).
 * @module
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlobStore } from "../../runtime/store/types.js";
import { checkDataFile, type RawRecord, type RawTable } from "./dataset-read.js";
import {
  decodeShard,
  flockUrlName,
  sha256Hex,
  verifyShard,
  type DataManifest,
  type ShardEntry,
} from "./dataset-shards.js";
import type { DatasetSpec, FileDatasetSpec } from "./dataset-spec.js";
import { streamLayout, type ShardRef } from "./dataset-stream-layout.js";
import type { StreamProfile } from "./dataset-stream-spec.js";
import { checkStoredDataset, DATASETS_BUCKET, IncompleteDatasetError } from "./dataset-store.js";
import { BadDataError } from "./errors.js";
import { DEFAULT_CACHE_BYTES, IN_USE_MS, evictCache } from "./dataset-cache-evict.js";

/** A stored dataset a job reads: its manifest (pinned when the shards were fetched) and the cache folder. */
export interface StoredSource {
  manifest: DataManifest;
  dir: string;
}

/** The stored datasets of a job's spec, by `flock://` URL (plain data: it crosses to the worker thread). */
export type StoredSources = Record<string, StoredSource>;

/** How a process reaches stored datasets: the datasets bucket, and its shard cache folder (default {@link defaultCacheDir}). */
export interface DataAccess {
  blobs: () => Promise<BlobStore>;
  cacheDir?: string;
  /** The cache folder's bound in bytes (default {@link DEFAULT_CACHE_BYTES}). */
  maxBytes?: number;
}

/** The {@link DataAccess} of a store provider (the cluster's datasets bucket, the default cache). */
export function dataAccess(
  stores: { blobs(bucket: string): Promise<BlobStore> },
  cacheDir?: string,
  maxBytes?: number,
): DataAccess {
  return {
    blobs: () => stores.blobs(DATASETS_BUCKET),
    ...(cacheDir === undefined ? {} : { cacheDir }),
    ...(maxBytes === undefined ? {} : { maxBytes }),
  };
}

/** The shard cache of this machine when the node says no other: `<tmpdir>/flock-data-cache`. */
export function defaultCacheDir(): string {
  return join(tmpdir(), "flock-data-cache");
}

const shardFile = (dir: string, shard: Pick<ShardEntry, "sha256">): string =>
  join(dir, `${shard.sha256}.shard`);

/**
 * The cached bytes of a shard when the file is there and hashes right; undefined otherwise. A
 * good read marks the shard used (its mtime, which eviction orders by: shared by every process
 * of the node, and kept across restarts).
 */
function readCached(dir: string, shard: ShardEntry): Uint8Array | undefined {
  let bytes: Buffer;
  const file = shardFile(dir, shard);
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  if (sha256Hex(bytes) !== shard.sha256) return undefined;
  try {
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    // evicted by another process since the read: the bytes read are still good
  }
  return bytes;
}

/**
 * Makes sure `dir` holds a good copy of one shard: keeps a cached copy whose hash matches,
 * else fetches the shard, verifies it against the manifest and writes it (temp file + rename).
 * Returns whether it was fetched. Throws {@link IncompleteDatasetError} for a shard the store
 * lacks and {@link BadDataError} for one whose bytes do not match the manifest.
 */
export async function cacheShard(
  blobs: BlobStore,
  dir: string,
  url: string,
  shard: ShardEntry,
): Promise<boolean> {
  if (readCached(dir, shard)) return false;
  const bytes = await blobs.get(shard.name);
  if (!bytes)
    throw new IncompleteDatasetError(
      flockUrlName(url) ?? url,
      `shard ${shard.name} is missing from the store`,
    );
  verifyShard(`${url} (${shard.name})`, bytes, shard.sha256);
  mkdirSync(dir, { recursive: true });
  const temp = join(dir, `.${shard.sha256}.${randomUUID().slice(0, 8)}.tmp`);
  try {
    writeFileSync(temp, bytes);
    renameSync(temp, shardFile(dir, shard));
  } finally {
    rmSync(temp, { force: true });
  }
  return true;
}

/** The `flock://` URLs a dataset spec reads (its source, and its test split when that is one). */
export function storedUrls(spec: DatasetSpec): string[] {
  if (typeof spec === "string") return [];
  return [spec.source, ...(typeof spec.test === "string" ? [spec.test] : [])].filter((u) =>
    u.startsWith("flock://"),
  );
}

/**
 * Stats the `file://` sources of a spec (`checkDataFile`: exists, a regular file, within the
 * limits); a `flock://` one is left to {@link fetchStoredSources}, which needs the store.
 */
export function checkFileSources(spec: DatasetSpec): void {
  if (typeof spec === "string") return;
  for (const url of [spec.source, ...(typeof spec.test === "string" ? [spec.test] : [])])
    if (!url.startsWith("flock://")) checkDataFile(url);
}

/** How many shards are fetched at once. */
const PARALLEL_FETCHES = 4;

/** Which shards {@link fetchStoredSources} fetches of a `stream: true` dataset. */
export interface FetchOptions {
  /**
   * `test` (default): the test split's shards (the evaluator scores it whole; it is bounded);
   * `none`: manifests only (a trainer fetches the shards of its batches, {@link ensureShards}).
   */
  streamed?: "test" | "none";
}

/**
 * Fetches the shards of the stored datasets a spec reads into the cache folder (checking each
 * manifest is complete and of the spec's format first): every shard, or for `stream: true` only
 * those `opts.streamed` says; undefined when the spec reads none. Throws `DatasetNotFoundError`,
 * {@link IncompleteDatasetError} or {@link BadDataError}.
 */
export async function fetchStoredSources(
  spec: DatasetSpec,
  access: DataAccess | undefined,
  opts: FetchOptions = {},
): Promise<StoredSources | undefined> {
  const urls = storedUrls(spec);
  if (urls.length === 0 || typeof spec === "string") return undefined;
  if (!access) throw new BadDataError(urls[0]!, "this process has no object store to read the dataset from");
  const store = await access.blobs();
  const dir = access.cacheDir ?? defaultCacheDir();
  const out: StoredSources = {};
  for (const url of urls) out[url] = { manifest: await readChecked(store, url, spec.format), dir };
  const wanted =
    spec.format !== "images" && spec.stream
      ? streamedShards(spec, out, opts.streamed ?? "test")
      : allShards(out);
  if (wanted.length === 0) return out; // manifests only: the cache is as it was
  await fetchAll(store, dir, wanted);
  const keep = new Set(wanted.map((r) => r.shard.sha256));
  evictCache(dir, access.maxBytes ?? DEFAULT_CACHE_BYTES, keep, Date.now(), IN_USE_MS);
  return out;
}

/** A stored dataset's manifest, checked complete and of the spec's format. */
async function readChecked(store: BlobStore, url: string, format: string): Promise<DataManifest> {
  const name = flockUrlName(url);
  if (name === undefined) throw new BadDataError(url, "is not a valid flock://NAME URL");
  const manifest = await checkStoredDataset(store, name);
  if (manifest.format !== format)
    throw new BadDataError(url, `is stored as ${manifest.format}, the job's dataset says ${format}`);
  return manifest;
}

const allShards = (sources: StoredSources): ShardRef[] =>
  Object.entries(sources).flatMap(([url, s]) => s.manifest.shards.map((shard) => ({ url, shard })));

/** The shards of a streamed spec to fetch up front: its test split's, or none. */
function streamedShards(spec: FileDatasetSpec, sources: StoredSources, which: "test" | "none"): ShardRef[] {
  if (which === "none") return [];
  const profile = requireProfile(spec);
  const manifests = Object.fromEntries(Object.entries(sources).map(([u, s]) => [u, s.manifest]));
  const { test } = streamLayout(spec, manifests, profile.splitSeed);
  return "refs" in test ? test.refs : [];
}

/** A streamed spec's profile; throws {@link BadDataError} when the submitter did not set one. */
export function requireProfile(spec: FileDatasetSpec): StreamProfile {
  if (!spec.profile)
    throw new BadDataError(
      spec.source,
      "stream: true needs the dataset profile its submitter computes (submit with `flock train` or `submitJob`)",
    );
  return spec.profile;
}

/** Caches the given shards, {@link PARALLEL_FETCHES} at a time; the number actually fetched. */
async function fetchAll(store: BlobStore, dir: string, refs: readonly ShardRef[]): Promise<number> {
  const queue = [...refs];
  let fetched = 0;
  const fetchNext = async (): Promise<void> => {
    for (let r = queue.shift(); r; r = queue.shift())
      if (await cacheShard(store, dir, r.url, r.shard)) fetched++;
  };
  await Promise.all(Array.from({ length: PARALLEL_FETCHES }, fetchNext));
  return fetched;
}

/**
 * Makes sure the node's cache holds good copies of `refs` (a trainer's next batch), fetching the
 * missing ones, then bounds the folder sparing them. Returns how many were fetched.
 */
export async function ensureShards(
  access: DataAccess | undefined,
  refs: readonly ShardRef[],
): Promise<number> {
  if (refs.length === 0) return 0;
  if (!access)
    throw new BadDataError(refs[0]!.url, "this process has no object store to read the dataset from");
  const dir = access.cacheDir ?? defaultCacheDir();
  const fetched = await fetchAll(await access.blobs(), dir, refs);
  if (fetched > 0) {
    const keep = new Set(refs.map((r) => r.shard.sha256));
    evictCache(dir, access.maxBytes ?? DEFAULT_CACHE_BYTES, keep, Date.now(), IN_USE_MS);
  }
  return fetched;
}

/**
 * One cached shard's records, verified by hash as read; throws {@link BadDataError} naming the
 * shard when it is not in `dir` (never fetched to this node, or evicted) or corrupt.
 */
export function readShardRecords(dir: string, ref: ShardRef): RawRecord[] {
  const file = `${ref.url} (${ref.shard.name})`;
  const bytes = readCached(dir, ref.shard);
  if (!bytes) throw new BadDataError(file, `the cached shard in ${dir} is missing or corrupt`);
  return decodeShard(file, bytes, ref.shard.records);
}

/**
 * Reads a stored dataset from the cache folder as a table, as `readTable` reads a file: the
 * records in file order, the columns, the uploaded file's sha256. Each shard is verified by hash
 * as it is read. Throws {@link BadDataError} naming the URL when a shard is absent or corrupt
 * (the actor side fetched them all, so that means the cache was changed under it).
 */
export function readStoredTable(
  url: string,
  format: DataManifest["format"],
  sources: StoredSources | undefined,
): RawTable {
  const source = sources?.[url];
  if (!source) throw new BadDataError(url, "was not fetched to this node before loading");
  const { manifest, dir } = source;
  if (manifest.format !== format)
    throw new BadDataError(url, `is stored as ${manifest.format}, the job's dataset says ${format}`);
  const records: RawRecord[] = [];
  for (const shard of manifest.shards) for (const r of readShardRecords(dir, { url, shard })) records.push(r);
  return { file: url, columns: manifest.columns, records, sha256: manifest.file.sha256 };
}
