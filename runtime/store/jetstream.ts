import { StorageType, type JetStreamClient, type KV, type NatsConnection, type ObjectStore } from "nats";
import { checkBucketName, checkKey, keyHasPrefix } from "./names.js";
import { KvConflictError, type BlobStore, type KvEntry, type KvStore, type StoreProvider } from "./types.js";

/** Options of {@link JetStreamStores}. */
export interface JetStreamStoresOptions {
  /** Cluster name: buckets are named `flock_<cluster>_<bucket>` (default `default`). */
  cluster?: string;
  /**
   * Replicas of every bucket. `auto` (default) asks for 3, so the buckets survive the death of one
   * NATS server, and falls back to 1 when the server is not part of a JetStream cluster with three
   * servers to place them on.
   */
  replicas?: number | "auto";
  /** Deadline of each JetStream request in ms (default 3000). */
  timeoutMs?: number;
  /**
   * Most bytes each object store (blob bucket) may hold (the stream's `max_bytes`; default
   * unlimited). A put that would exceed it fails: a checkpoint write fails and the previous
   * checkpoint stays the latest, rather than the store growing without bound. Fixed by whoever
   * creates the bucket first.
   */
  blobMaxBytes?: number;
}

/** JetStream API error codes this provider tells apart. */
const WRONG_LAST_SEQUENCE = 10071;
const REPLICAS_NOT_SUPPORTED = 10074;
const INSUFFICIENT_RESOURCES = 10023;

interface ApiError {
  api_error?: { err_code?: number; description?: string };
  message?: string;
}

function apiErrorCode(err: unknown): number | undefined {
  return (err as ApiError | undefined)?.api_error?.err_code;
}

function isWrongLastSequence(err: unknown): boolean {
  return (
    apiErrorCode(err) === WRONG_LAST_SEQUENCE || /wrong last sequence/i.test((err as ApiError)?.message ?? "")
  );
}

/**
 * Buckets in NATS JetStream: KV buckets (history 1, the given TTL as the stream's max age, so TTL
 * expiry runs on the server's clock) and object stores for blobs. Bucket streams are created on
 * first use and shared by every process of the cluster.
 *
 * A replicated bucket with a TTL (leases, the membership view, on a JetStream cluster) is held in
 * memory, not on disk. Its keys are ephemeral by nature, and nats-server 2.9.10 breaks such a
 * file-stored R3 bucket when its servers restore it empty (every key expired while they were
 * down): the message a holder has just written can be read back by its revision, but a read of
 * the key's last value says it is absent. A compare-and-set on the key then fails while a create
 * succeeds, so leases changed hands once a second for minutes after a JetStream outage (issue 14;
 * logged from the chaos harness: revision 263 read as a PUT by revision, absent by key,
 * `Restored 0 messages` for the bucket on all three servers). The cluster's metadata recreates a
 * memory stream empty and consistent after an outage. What that costs: a restart of every server
 * at once loses the leases even when it was shorter than their TTL, so every node re-incarnates; a
 * restart of one server of three does not. A single server keeps file storage: it does not
 * recreate a memory stream after its own restart at all (a daemon then found no identity bucket),
 * and the defect was not seen there (the single-server restart tests keep their leases).
 */
export class JetStreamStores implements StoreProvider {
  readonly cluster: string;
  private readonly js: JetStreamClient;
  private readonly kvs = new Map<string, Promise<JetStreamKv>>();
  private readonly objectStores = new Map<string, Promise<JetStreamBlobs>>();
  /** Replicas in use once decided (`auto` tries 3 once, then remembers what worked). */
  private replicas: number | undefined;

  constructor(
    readonly connection: NatsConnection,
    private readonly opts: JetStreamStoresOptions = {},
  ) {
    this.cluster = opts.cluster ?? "default";
    if (!/^[A-Za-z0-9_-]+$/.test(this.cluster))
      throw new Error(`invalid cluster name "${this.cluster}": use letters, digits, _ -`);
    this.js = connection.jetstream({ timeout: opts.timeoutMs ?? 3000 });
    if (typeof opts.replicas === "number") this.replicas = opts.replicas;
  }

  /** Replicas of the buckets this provider created, once the first one exists. */
  get replicaCount(): number | undefined {
    return this.replicas;
  }

  /** The JetStream bucket (stream suffix) name behind a logical bucket name. */
  bucketName(bucket: string): string {
    return `flock_${this.cluster}_${bucket}`;
  }

  async kv(bucket: string, opts: { ttlMs?: number } = {}): Promise<KvStore> {
    checkBucketName(bucket);
    let p = this.kvs.get(bucket);
    if (!p) {
      const ttlMs = opts.ttlMs ?? 0;
      p = this.withReplicas((replicas) =>
        this.js.views.kv(this.bucketName(bucket), {
          history: 1,
          ttl: ttlMs,
          replicas,
          allow_direct: false,
          storage: ttlMs > 0 && replicas > 1 ? StorageType.Memory : StorageType.File,
        }),
      ).then((kv) => new JetStreamKv(bucket, ttlMs, kv));
      this.kvs.set(bucket, p);
      p.catch(() => this.kvs.delete(bucket));
    }
    return p;
  }

  async blobs(bucket: string): Promise<BlobStore> {
    checkBucketName(bucket);
    let p = this.objectStores.get(bucket);
    if (!p) {
      p = this.withReplicas((replicas) =>
        this.js.views.os(this.bucketName(bucket), {
          replicas,
          ...(this.opts.blobMaxBytes ? { max_bytes: this.opts.blobMaxBytes } : {}),
        }),
      ).then((os) => new JetStreamBlobs(os));
      this.objectStores.set(bucket, p);
      p.catch(() => this.objectStores.delete(bucket));
    }
    return p;
  }

  /** Runs `open` with the replica count; under `auto`, falls back from 3 to 1 when 3 cannot be placed. */
  private async withReplicas<T>(open: (replicas: number) => Promise<T>): Promise<T> {
    if (this.replicas !== undefined) return open(this.replicas);
    // A server that is not part of a cluster can hold one replica only; don't even try three
    // (an object store opened with three fails later, at its first put).
    if (!this.connection.info?.cluster) {
      this.replicas = 1;
      return open(1);
    }
    try {
      const out = await open(3);
      this.replicas = 3;
      return out;
    } catch (err) {
      const code = apiErrorCode(err);
      const msg = (err as Error)?.message ?? "";
      if (
        code !== REPLICAS_NOT_SUPPORTED &&
        code !== INSUFFICIENT_RESOURCES &&
        !/replicas|insufficient resources/i.test(msg)
      )
        throw err;
      const out = await open(1);
      this.replicas = 1;
      return out;
    }
  }
}

class JetStreamKv implements KvStore {
  constructor(
    readonly bucket: string,
    readonly ttlMs: number,
    private readonly kv: KV,
  ) {}

  async get(key: string): Promise<KvEntry | undefined> {
    checkKey(key);
    const e = await this.kv.get(key);
    if (!e || e.operation === "DEL" || e.operation === "PURGE") return undefined;
    return { key, value: e.value.slice(), revision: e.revision };
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    try {
      return await this.kv.create(key, value);
    } catch (err) {
      if (isWrongLastSequence(err)) throw new KvConflictError(key, "exists");
      throw err;
    }
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    checkKey(key);
    if (!(revision > 0)) throw new KvConflictError(key, `expected revision ${revision}`);
    try {
      return await this.kv.update(key, value, revision);
    } catch (err) {
      if (isWrongLastSequence(err))
        throw new KvConflictError(key, `revision ${revision} is no longer current`);
      throw err;
    }
  }

  async put(key: string, value: Uint8Array): Promise<number> {
    checkKey(key);
    return this.kv.put(key, value);
  }

  async delete(key: string, revision?: number): Promise<void> {
    checkKey(key);
    if (revision !== undefined && !(revision > 0))
      throw new KvConflictError(key, `expected revision ${revision}`);
    try {
      await this.kv.delete(key, revision === undefined ? undefined : { previousSeq: revision });
    } catch (err) {
      if (isWrongLastSequence(err))
        throw new KvConflictError(key, `revision ${revision} is no longer current`);
      throw err;
    }
  }

  async keys(prefix?: string): Promise<string[]> {
    // A prefix that ends a token (`a.b.`) becomes a server-side filter; any other is filtered here.
    const filter =
      prefix && prefix.endsWith(".") && !prefix.startsWith(".") && /^[-/=.\w]+$/.test(prefix)
        ? `${prefix}>`
        : undefined;
    const out: string[] = [];
    for await (const key of await this.kv.keys(filter)) if (keyHasPrefix(key, prefix)) out.push(key);
    return [...new Set(out)].sort();
  }
}

class JetStreamBlobs implements BlobStore {
  constructor(private readonly os: ObjectStore) {}

  async put(name: string, data: Uint8Array): Promise<void> {
    checkBlobName(name);
    await this.os.putBlob({ name }, data);
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    checkBlobName(name);
    const info = await this.os.info(name);
    if (!info || info.deleted) return undefined;
    return (await this.os.getBlob(name)) ?? undefined;
  }

  async delete(name: string): Promise<void> {
    checkBlobName(name);
    // The object store's delete throws on a name it does not hold; the contract makes that a no-op.
    const info = await this.os.info(name);
    if (!info || info.deleted) return;
    await this.os.delete(name);
  }

  async list(prefix = ""): Promise<string[]> {
    const infos = await this.os.list();
    return [
      ...new Set(infos.filter((i) => !i.deleted && i.name.startsWith(prefix)).map((i) => i.name)),
    ].sort();
  }
}

function checkBlobName(name: string): void {
  if (name.length === 0 || name.length > 1024) throw new RangeError(`blob name must be 1-1024 characters`);
}
