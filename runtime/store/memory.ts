import { systemScheduler, type Clock } from "../clock.js";
import { checkBucketName, checkKey, keyHasPrefix } from "./names.js";
import { KvConflictError, type BlobStore, type KvEntry, type KvStore, type StoreProvider } from "./types.js";

/** Options of {@link MemoryStores}. */
export interface MemoryStoresOptions {
  /** Cluster label, for parity with the JetStream provider (default `default`). */
  cluster?: string;
  /**
   * Clock that drives TTL expiry (default {@link systemScheduler}); in tests, the same
   * `VirtualScheduler` as the leases and nodes on top, so keys expire on virtual time.
   */
  clock?: Clock;
}

interface Slot {
  value: Uint8Array;
  revision: number;
  writtenAt: number;
  /** A delete marker: the key reads as absent but keeps its revision, as a JetStream KV does. */
  deleted: boolean;
}

/**
 * Buckets in this process's memory: the embedded single-process default. Same contract as the
 * JetStream provider: per-bucket revisions that increase with every write (delete markers too),
 * compare-and-set create/update/delete, TTL expiry of keys not rewritten (delete markers expire too),
 * the same name and key rules, and values copied in and out so callers never share buffers.
 * Several nodes in one process share one instance.
 */
export class MemoryStores implements StoreProvider {
  readonly cluster: string;
  private readonly now: () => number;
  private readonly kvs = new Map<string, MemoryKv>();
  private readonly blobBuckets = new Map<string, MemoryBlobs>();

  constructor(opts: MemoryStoresOptions = {}) {
    this.cluster = opts.cluster ?? "default";
    const clock = opts.clock ?? systemScheduler;
    this.now = () => clock.now();
  }

  async kv(bucket: string, opts: { ttlMs?: number } = {}): Promise<KvStore> {
    checkBucketName(bucket);
    let kv = this.kvs.get(bucket);
    if (!kv) {
      kv = new MemoryKv(bucket, opts.ttlMs ?? 0, this.now);
      this.kvs.set(bucket, kv);
    }
    return kv;
  }

  async blobs(bucket: string): Promise<BlobStore> {
    checkBucketName(bucket);
    let b = this.blobBuckets.get(bucket);
    if (!b) {
      b = new MemoryBlobs();
      this.blobBuckets.set(bucket, b);
    }
    return b;
  }
}

class MemoryKv implements KvStore {
  private seq = 0;
  private readonly slots = new Map<string, Slot>();

  constructor(
    readonly bucket: string,
    readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  async get(key: string): Promise<KvEntry | undefined> {
    checkKey(key);
    const slot = this.slot(key);
    if (!slot || slot.deleted) return undefined;
    return { key, value: slot.value.slice(), revision: slot.revision };
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    const slot = this.slot(key);
    if (slot && !slot.deleted) throw new KvConflictError(key, `exists at revision ${slot.revision}`);
    return this.write(key, value, false);
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    checkKey(key);
    const slot = this.slot(key);
    if (!slot || slot.revision !== revision)
      throw new KvConflictError(key, `expected revision ${revision}, found ${slot?.revision ?? "none"}`);
    return this.write(key, value, false);
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    return this.write(key, value, false);
  }

  async delete(key: string, revision?: number): Promise<void> {
    checkKey(key);
    if (revision !== undefined) {
      const slot = this.slot(key);
      if (!slot || slot.revision !== revision)
        throw new KvConflictError(key, `expected revision ${revision}, found ${slot?.revision ?? "none"}`);
    }
    this.write(key, new Uint8Array(0), true);
  }

  async keys(prefix?: string): Promise<string[]> {
    const out: string[] = [];
    for (const key of [...this.slots.keys()]) {
      const slot = this.slot(key);
      if (slot && !slot.deleted && keyHasPrefix(key, prefix)) out.push(key);
    }
    return out.sort();
  }

  /** The key's slot, after dropping it if its TTL has run out. */
  private slot(key: string): Slot | undefined {
    const slot = this.slots.get(key);
    if (slot && this.ttlMs > 0 && this.now() - slot.writtenAt >= this.ttlMs) {
      this.slots.delete(key);
      return undefined;
    }
    return slot;
  }

  private write(key: string, value: Uint8Array, deleted: boolean): number {
    const revision = ++this.seq;
    this.slots.set(key, { value: value.slice(), revision, writtenAt: this.now(), deleted });
    return revision;
  }
}

class MemoryBlobs implements BlobStore {
  private readonly blobs = new Map<string, Uint8Array>();

  async put(name: string, data: Uint8Array): Promise<void> {
    if (name.length === 0 || name.length > 1024) throw new RangeError(`blob name must be 1-1024 characters`);
    this.blobs.set(name, data.slice());
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    return this.blobs.get(name)?.slice();
  }

  async list(prefix = ""): Promise<string[]> {
    return [...this.blobs.keys()].filter((name) => name.startsWith(prefix)).sort();
  }

  async delete(name: string): Promise<void> {
    this.blobs.delete(name);
  }
}
