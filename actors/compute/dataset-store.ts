/**
 * Datasets in the cluster's object store: `put` (shards first, the manifest last, shards cleaned
 * when a put fails), `list`, `remove`, and reading a manifest back. The bucket is
 * {@link DATASETS_BUCKET}; object names are `manifest.NAME` and `shard.NAME.PUTID.NNNNNN`, so a
 * put after a remove never meets an older put's shards.
 * @module
 */
import { randomUUID } from "node:crypto";
import type { BlobStore } from "../../runtime/store/types.js";
import type { RawTable } from "./dataset-read.js";
import {
  buildManifest,
  cutShards,
  DataManifest,
  type CutShard,
  DEFAULT_SHARD_LIMITS,
  datasetNameProblem,
  flockUrl,
  type ShardLimits,
} from "./dataset-shards.js";

/** Object-store bucket of the cluster's datasets. */
export const DATASETS_BUCKET = "datasets";

/** The object name of a dataset's manifest. */
export const manifestName = (name: string): string => `manifest.${name}`;
/** The prefix of every shard of a dataset (names hold no dots, so no other dataset's). */
export const shardPrefix = (name: string): string => `shard.${name}.`;

/** A stored dataset that is not there (never put, removed, or its put never finished). */
export class DatasetNotFoundError extends Error {
  override name = "DatasetNotFoundError";
  constructor(readonly dataset: string) {
    super(`${flockUrl(dataset)}: no such dataset in the cluster (see \`flock data ls\`)`);
  }
}

/** A stored dataset whose manifest does not decode or names shards the store does not hold. */
export class IncompleteDatasetError extends Error {
  override name = "IncompleteDatasetError";
  constructor(
    readonly dataset: string,
    readonly problem: string,
  ) {
    super(`${flockUrl(dataset)}: ${problem}`);
  }
}

/** A `put` onto a name that already holds a dataset. */
export class DatasetExistsError extends Error {
  override name = "DatasetExistsError";
  constructor(readonly dataset: string) {
    super(`${flockUrl(dataset)} already exists: remove it first (\`flock data rm ${dataset}\`)`);
  }
}

/** Upload progress: shards done of all, bytes done of all. */
export interface PutProgress {
  shards: number;
  totalShards: number;
  bytes: number;
  totalBytes: number;
}

/** Options of {@link putDataset}. */
export interface PutOptions {
  limits?: ShardLimits;
  /** Size of the uploaded file in bytes (recorded in the manifest). */
  fileBytes: number;
  onProgress?: (p: PutProgress) => void;
  now?: () => Date;
}

/**
 * Stores a parsed table as dataset `name`: refuses a bad or taken name, uploads the shards, then
 * writes the manifest, so the dataset is visible only once complete. When an upload fails, the
 * shards written so far are deleted (best effort) and the error rethrown.
 */
export async function putDataset(
  blobs: BlobStore,
  name: string,
  format: DataManifest["format"],
  table: RawTable,
  opts: PutOptions,
): Promise<DataManifest> {
  const shardName = await preparePut(blobs, name);
  const shards = cutShards(table.records, opts.limits ?? DEFAULT_SHARD_LIMITS);
  const now = (opts.now ?? (() => new Date()))();
  const manifest = buildManifest(name, format, table, opts.fileBytes, shards, shardName, now);
  return uploadShards(blobs, manifest, shards, opts.onProgress);
}

/**
 * Refuses a bad or taken dataset name; the object name of shard `i` of a new put of `name`
 * (a fresh put id, so it never meets an older put's shards).
 */
export async function preparePut(blobs: BlobStore, name: string): Promise<(index: number) => string> {
  const problem = datasetNameProblem(name);
  if (problem) throw new RangeError(problem);
  if (await blobs.get(manifestName(name))) throw new DatasetExistsError(name);
  const putId = randomUUID().slice(0, 8);
  return (i) => `${shardPrefix(name)}${putId}.${String(i).padStart(6, "0")}`;
}

/** A put whose shards are not those its manifest was built from (a file that changed between passes). */
export class ShardMismatchError extends Error {
  override name = "ShardMismatchError";
}

/**
 * Uploads `shards` as they come (an array, or cut on the fly from a stream), each checked against
 * `manifest`'s entry of the same index, then the manifest, so the dataset is visible only once
 * complete. When an upload fails, or a shard is not the one the manifest names (throws
 * {@link ShardMismatchError}), the shards written so far are deleted (best effort) and the
 * error rethrown; nothing is visible.
 */
export async function uploadShards(
  blobs: BlobStore,
  manifest: DataManifest,
  shards: Iterable<CutShard> | AsyncIterable<CutShard>,
  onProgress?: (p: PutProgress) => void,
): Promise<DataManifest> {
  const written: string[] = [];
  const progress: PutProgress = {
    shards: 0,
    totalShards: manifest.shards.length,
    bytes: 0,
    totalBytes: manifest.bytes,
  };
  try {
    for await (const shard of shards) {
      const entry = manifest.shards[progress.shards];
      if (entry?.sha256 !== shard.sha256 || entry.first !== shard.first)
        throw new ShardMismatchError(
          `${flockUrl(manifest.name)}: shard ${progress.shards} is not the one checked (did the file change during the put?)`,
        );
      written.push(entry.name);
      await blobs.put(entry.name, shard.bytes);
      progress.shards++;
      progress.bytes += shard.bytes.length;
      onProgress?.({ ...progress });
    }
    if (progress.shards !== manifest.shards.length)
      throw new ShardMismatchError(
        `${flockUrl(manifest.name)}: ${progress.shards} shards were cut, ${manifest.shards.length} checked (did the file change during the put?)`,
      );
    await blobs.put(manifestName(manifest.name), new TextEncoder().encode(JSON.stringify(manifest)));
  } catch (error) {
    for (const shard of written) await blobs.delete(shard).catch(() => undefined);
    throw error;
  }
  return manifest;
}

/** Decodes a manifest's bytes; throws {@link IncompleteDatasetError} when they are not one. */
export function decodeManifest(name: string, bytes: Uint8Array): DataManifest {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new IncompleteDatasetError(name, `its manifest is not JSON (${(error as Error).message})`);
  }
  const parsed = DataManifest.safeParse(value);
  if (!parsed.success)
    throw new IncompleteDatasetError(name, `its manifest is malformed: ${parsed.error.message}`);
  if (parsed.data.name !== name)
    throw new IncompleteDatasetError(name, `its manifest names "${parsed.data.name}"`);
  return parsed.data;
}

/** A dataset's manifest; throws {@link DatasetNotFoundError} or {@link IncompleteDatasetError}. */
export async function readManifest(blobs: BlobStore, name: string): Promise<DataManifest> {
  const problem = datasetNameProblem(name);
  if (problem) throw new RangeError(problem);
  const bytes = await blobs.get(manifestName(name));
  if (!bytes) throw new DatasetNotFoundError(name);
  return decodeManifest(name, bytes);
}

/**
 * A dataset's manifest, checked complete: it decodes and the store holds every shard it names
 * (one listing, no shard read). Throws {@link DatasetNotFoundError} or {@link IncompleteDatasetError}.
 */
export async function checkStoredDataset(blobs: BlobStore, name: string): Promise<DataManifest> {
  const manifest = await readManifest(blobs, name);
  const present = new Set(await blobs.list(shardPrefix(name)));
  const missing = manifest.shards.filter((s) => !present.has(s.name));
  if (missing.length > 0)
    throw new IncompleteDatasetError(
      name,
      `${missing.length} of its ${manifest.shards.length} shards are missing from the store (first: ${missing[0]?.name})`,
    );
  return manifest;
}

/** The datasets of a bucket (what `flock data ls` shows). */
export interface DatasetListing {
  datasets: DataManifest[];
  /** Manifests that did not decode, with why. */
  warnings: string[];
}

/** Every dataset's manifest, sorted by name; one that does not decode becomes a warning. */
export async function listDatasets(blobs: BlobStore): Promise<DatasetListing> {
  const out: DatasetListing = { datasets: [], warnings: [] };
  for (const object of await blobs.list("manifest.")) {
    const name = object.slice("manifest.".length);
    try {
      const bytes = await blobs.get(object);
      if (bytes) out.datasets.push(decodeManifest(name, bytes));
    } catch (error) {
      out.warnings.push((error as Error).message);
    }
  }
  return out;
}

/**
 * Removes a dataset: the manifest first (so it is invisible at once and no job starts on it),
 * then every shard under its name, including those of a put that failed without cleaning up.
 * Returns the number of objects deleted; throws {@link DatasetNotFoundError} when there were none.
 */
export async function removeDataset(blobs: BlobStore, name: string): Promise<number> {
  const problem = datasetNameProblem(name);
  if (problem) throw new RangeError(problem);
  const hadManifest = (await blobs.get(manifestName(name))) !== undefined;
  if (hadManifest) await blobs.delete(manifestName(name));
  const shards = await blobs.list(shardPrefix(name));
  for (const shard of shards) await blobs.delete(shard);
  const deleted = shards.length + (hadManifest ? 1 : 0);
  if (deleted === 0) throw new DatasetNotFoundError(name);
  return deleted;
}
