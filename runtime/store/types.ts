/**
 * Durable state behind leases, coordinator state and checkpoints. Two implementations share this
 * contract: JetStream (KV buckets and the object store) and memory (the embedded default).
 */

/** One value in a KV bucket, with the revision that compare-and-set updates name. */
export interface KvEntry {
  key: string;
  value: Uint8Array;
  revision: number;
}

/** A create or compare-and-set update lost its race: the key exists, or its revision moved on. */
export class KvConflictError extends Error {
  override name = "KvConflictError";
  constructor(
    readonly key: string,
    detail: string,
  ) {
    super(`kv conflict on "${key}": ${detail}`);
  }
}

/** A key/value bucket with per-key revisions. With a TTL, a key not written for that long vanishes. */
export interface KvStore {
  /** The bucket's logical name (as passed to {@link StoreProvider.kv}), when the implementation knows it. */
  readonly bucket?: string;
  /** The bucket's TTL in ms (0 or undefined: keys never expire), when the implementation knows it. */
  readonly ttlMs?: number;
  get(key: string): Promise<KvEntry | undefined>;
  /** Writes only if the key does not exist (or has expired or been deleted); returns the revision. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key's current revision is `revision` (compare-and-set); returns the new one. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  /** Writes unconditionally; returns the revision. */
  put(key: string, value: Uint8Array): Promise<number>;
  /** Deletes; with a revision, only if it is still current. */
  delete(key: string, revision?: number): Promise<void>;
  /** Keys present, optionally under a prefix (`a.b.` style). */
  keys(prefix?: string): Promise<string[]>;
}

/** Named blobs (checkpoints). */
export interface BlobStore {
  put(name: string, data: Uint8Array): Promise<void>;
  get(name: string): Promise<Uint8Array | undefined>;
  /** Deletes; deleting a blob that is not there is not an error. */
  delete(name: string): Promise<void>;
  /** Names of the blobs present whose name starts with `prefix` (all without one), sorted. */
  list(prefix?: string): Promise<string[]>;
}

/** Opens buckets by name. */
export interface StoreProvider {
  /**
   * The cluster this provider's buckets belong to, when it is scoped to one (both built-in
   * providers are: JetStream buckets are named `flock_<cluster>_<bucket>`).
   */
  readonly cluster?: string;
  /**
   * Opens (creating when needed) a KV bucket; `ttlMs` makes keys expire when not rewritten. The
   * first opener of a bucket fixes its TTL: use one bucket name per TTL value.
   */
  kv(bucket: string, opts?: { ttlMs?: number }): Promise<KvStore>;
  /** Opens (creating when needed) a blob bucket. */
  blobs(bucket: string): Promise<BlobStore>;
}

/**
 * After a compare-and-set write on `key` lost its race: the key's revision when it holds exactly
 * `value`, i.e. an earlier attempt of this same write landed but its answer was lost (a NATS
 * server restart, a stream leader election); undefined when someone else wrote it (or it is gone).
 * Only sound for values no other writer could write byte for byte (they name their writer).
 */
export async function landedRevision(
  kv: KvStore,
  key: string,
  value: Uint8Array,
): Promise<number | undefined> {
  const entry = await kv.get(key);
  if (!entry || entry.value.length !== value.length) return undefined;
  return entry.value.every((byte, i) => byte === value[i]) ? entry.revision : undefined;
}
