import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { KvConflictError, landedRevision, type KvStore, type StoreProvider } from "../store/index.js";
import type { Unsubscribe } from "../transport/index.js";
import type { Lease } from "./types.js";

/** Options of {@link acquireLease} and {@link takeOverLease}. */
export interface LeaseOptions {
  /** Lifetime of the lease without renewal; must equal the TTL of the bucket it lives in. */
  ttlMs: number;
  /** Renewal period (default ttlMs / 3). */
  renewEveryMs?: number;
  /** Extra JSON fields stored with the lease, for whoever reads it. */
  meta?: Record<string, unknown>;
  /** Monotonic clock in ms (default `performance.now`). */
  now?: () => number;
  log?: Logger;
}

/** What a lease key holds, as read by anyone. */
export interface LeaseRecord {
  holder: string;
  /** KV revision: the fencing token of the current holder. */
  revision: number;
  meta: Record<string, unknown>;
}

/** The bucket that holds leases of one TTL (`leases-<ttlMs>`): the TTL is a property of a bucket. */
export function openLeaseBucket(stores: StoreProvider, ttlMs: number): Promise<KvStore> {
  const ttl = Math.round(ttlMs);
  if (!(ttl >= 100)) throw new RangeError(`lease ttl must be at least 100 ms, got ${ttlMs}`);
  return stores.kv(`leases-${ttl}`, { ttlMs: ttl });
}

/**
 * Tries once to take the lease `key` for `holder`: a KV create, which only succeeds when nobody
 * holds it (the key is absent, deleted, or expired by the bucket's TTL on the server's clock).
 * Returns the held lease, or undefined when someone else holds it. Other store errors reject.
 *
 * The returned lease renews itself by compare-and-set on its revision every `renewEveryMs`. It is
 * lost, `held` turns false and `onLost` fires once, when a renewal finds the revision moved on, or
 * when no renewal was confirmed for `ttlMs` (measured from when the last confirmed write was sent,
 * so the holder gives up no later than the server could expire the key). A holder that lost its
 * lease must stop acting; the revision is the fencing token for anything it wrote meanwhile.
 */
export async function acquireLease(
  kv: KvStore,
  key: string,
  holder: string,
  opts: LeaseOptions,
): Promise<Lease | undefined> {
  return holdAfterWrite(kv, key, holder, opts, (value) => kv.create(key, value));
}

/**
 * Takes the lease over from a holder known to be gone (e.g. declared dead by membership) without
 * waiting for its TTL: a compare-and-set update from the `revision` the caller read. Returns
 * undefined when the revision moved on (the holder renewed: it is not gone) or the key vanished.
 */
export async function takeOverLease(
  kv: KvStore,
  key: string,
  holder: string,
  revision: number,
  opts: LeaseOptions,
): Promise<Lease | undefined> {
  return holdAfterWrite(kv, key, holder, opts, (value) => kv.update(key, value, revision));
}

/** Writes the holder's record; a lease held from that write, or undefined when it lost the race. */
async function holdAfterWrite(
  kv: KvStore,
  key: string,
  holder: string,
  opts: LeaseOptions,
  write: (value: Uint8Array) => Promise<number>,
): Promise<Lease | undefined> {
  checkLeaseArgs(kv, holder, opts);
  const now = opts.now ?? (() => performance.now());
  const sentAt = now();
  try {
    const revision = await write(encodeLease(holder, opts.meta));
    return new HeldLease(kv, key, holder, revision, sentAt, opts);
  } catch (err) {
    if (err instanceof KvConflictError) return undefined;
    throw err;
  }
}

/** Reads who holds a lease, or undefined when nobody does. */
export async function readLease(kv: KvStore, key: string): Promise<LeaseRecord | undefined> {
  const entry = await kv.get(key);
  if (!entry) return undefined;
  const decoded = decodeLease(entry.value);
  return decoded && { ...decoded, revision: entry.revision };
}

function sleepUnref(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function checkLeaseArgs(kv: KvStore, holder: string, opts: LeaseOptions): void {
  if (!holder) throw new RangeError("a lease needs a holder");
  if (!(opts.ttlMs > 0)) throw new RangeError(`lease ttl must be positive, got ${opts.ttlMs}`);
  if (kv.ttlMs !== undefined && kv.ttlMs !== opts.ttlMs) {
    throw new RangeError(
      `lease ttl ${opts.ttlMs} ms does not match the TTL of bucket ${kv.bucket ?? "?"} (${kv.ttlMs} ms); use openLeaseBucket(stores, ttlMs)`,
    );
  }
  const renew = opts.renewEveryMs ?? opts.ttlMs / 3;
  if (!(renew > 0 && renew < opts.ttlMs))
    throw new RangeError(`renewEveryMs must be in (0, ttlMs), got ${renew}`);
}

function encodeLease(holder: string, meta: Record<string, unknown> = {}): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ ...meta, holder, writtenAt: Date.now() }));
}

function decodeLease(value: Uint8Array): Omit<LeaseRecord, "revision"> | undefined {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(value)) as Record<string, unknown>;
    if (typeof parsed.holder !== "string") return undefined;
    const { holder, ...meta } = parsed;
    return { holder, meta };
  } catch {
    return undefined;
  }
}

/** A lease this process holds, renewing itself until lost or released. */
class HeldLease implements Lease {
  private lost = false;
  private released = false;
  private confirmedAt: number;
  private rev: number;
  private inFlight: Promise<void> | undefined;
  /** When the first renewal since the last confirmed one went out unanswered (it may have landed). */
  private unconfirmedSince: number | undefined;
  private readonly listeners = new Set<(reason: string) => void>();
  private readonly renewTimer: NodeJS.Timeout;
  private expiryTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly value: Uint8Array;

  constructor(
    private readonly kv: KvStore,
    readonly key: string,
    readonly holder: string,
    revision: number,
    sentAt: number,
    private readonly opts: LeaseOptions,
  ) {
    this.now = opts.now ?? (() => performance.now());
    this.log = opts.log ?? silentLogger();
    this.value = encodeLease(holder, opts.meta);
    this.rev = revision;
    this.confirmedAt = sentAt;
    this.renewTimer = setInterval(() => this.renew(), opts.renewEveryMs ?? opts.ttlMs / 3);
    this.renewTimer.unref();
    this.armExpiry();
  }

  get revision(): number {
    return this.rev;
  }

  get held(): boolean {
    return !this.lost && !this.released && this.now() - this.confirmedAt < this.opts.ttlMs;
  }

  onLost(listener: (reason: string) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async release(): Promise<void> {
    if (this.released) return;
    const wasLost = this.lost;
    this.released = true;
    this.stopTimers();
    if (wasLost) return;
    // A renewal in flight may still move the revision; wait for it, but never longer than the TTL.
    if (this.inFlight) await Promise.race([this.inFlight, sleepUnref(this.opts.ttlMs)]);
    if (this.lost || this.inFlight) return;
    try {
      await this.kv.delete(this.key, this.rev);
    } catch (err) {
      // Someone already took it, or the store is unreachable: the TTL frees it in any case.
      if (!(err instanceof KvConflictError))
        this.log.debug({ err, key: this.key }, "lease release failed; it will expire");
    }
  }

  /** Stops renewing without deleting the key (a simulated crash): the TTL or a takeover frees it. */
  abandon(): void {
    if (this.released) return;
    this.released = true;
    this.stopTimers();
  }

  private renew(): void {
    if (this.lost || this.released || this.inFlight) return;
    if (this.now() - this.confirmedAt >= this.opts.ttlMs)
      return this.lose(`not renewed within ${this.opts.ttlMs} ms`);
    const sentAt = this.now();
    this.inFlight = this.kv.update(this.key, this.value, this.rev).then(
      (rev) => {
        this.inFlight = undefined;
        if (this.lost || this.released) {
          // Declared lost (or released) while this write was in flight: hand the key back at once.
          if (this.lost) void this.kv.delete(this.key, rev).catch(() => undefined);
          else this.rev = rev;
          return;
        }
        this.rev = rev;
        this.confirmedAt = sentAt;
        this.unconfirmedSince = undefined;
        this.armExpiry();
      },
      (err: unknown) => {
        this.inFlight = undefined;
        if (err instanceof KvConflictError) return void this.afterConflict();
        // Unconfirmed: try again soon; the expiry timer ends the lease if this goes on for ttl.
        // The write may still have landed (its answer lost): remember when the first such went out.
        this.unconfirmedSince ??= sentAt;
        this.log.debug({ err, key: this.key }, "lease renewal failed; retrying");
        setTimeout(
          () => this.renew(),
          Math.min(250, (this.opts.renewEveryMs ?? this.opts.ttlMs / 3) / 2),
        ).unref();
      },
    );
  }

  /**
   * A renewal found the revision moved on. Either someone else wrote the key (it expired and was
   * taken, or was taken over), or an earlier renewal of ours landed with its answer lost (a NATS
   * server restart, a stream leader election): then the key still holds exactly our bytes, and the
   * lease is kept, confirmed as of that earlier renewal's sending (no later than it could have
   * landed, so the holder still gives up no later than the server could expire the key).
   */
  private async afterConflict(): Promise<void> {
    const since = this.unconfirmedSince;
    const moved = `revision ${this.rev} moved on (expired or taken over)`;
    if (since === undefined) return this.lose(moved);
    this.inFlight = landedRevision(this.kv, this.key, this.value).then(
      (landed) => {
        this.inFlight = undefined;
        if (this.lost || this.released) return;
        if (landed === undefined) return this.lose(moved);
        this.rev = landed;
        this.confirmedAt = Math.max(this.confirmedAt, since);
        this.unconfirmedSince = undefined;
        this.log.info({ key: this.key }, "a lease renewal whose answer was lost had landed; lease kept");
        this.armExpiry();
      },
      () => {
        // Cannot tell yet: try again; the expiry timer ends the lease if this goes on for ttl.
        this.inFlight = undefined;
      },
    );
    await this.inFlight;
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    const left = this.confirmedAt + this.opts.ttlMs - this.now();
    this.expiryTimer = setTimeout(
      () => {
        if (!this.held && !this.lost && !this.released)
          this.lose(`no renewal confirmed within ${this.opts.ttlMs} ms`);
        else if (!this.lost && !this.released) this.armExpiry();
      },
      Math.max(0, left) + 1,
    );
    this.expiryTimer.unref();
  }

  private lose(reason: string): void {
    if (this.lost || this.released) return;
    this.lost = true;
    this.stopTimers();
    this.log.warn({ key: this.key, holder: this.holder, reason }, "lease lost");
    for (const l of [...this.listeners]) {
      try {
        l(reason);
      } catch (error) {
        setImmediate(() => this.log.error({ err: error }, "lease onLost listener threw"));
      }
    }
    this.listeners.clear();
  }

  private stopTimers(): void {
    clearInterval(this.renewTimer);
    clearTimeout(this.expiryTimer);
  }
}

/**
 * Stops a lease's renewals without releasing it, as if its process had died: the key stays until
 * its TTL runs out or someone takes it over. For in-process chaos (a node's `crash()`).
 */
export function abandonLease(lease: Lease): void {
  if (lease instanceof HeldLease) lease.abandon();
}

/** Options of {@link LeaseCandidate}. */
export interface LeaseCandidateOptions extends LeaseOptions {
  /** Pause between attempts while someone else holds the lease (default ttlMs / 4). */
  retryEveryMs?: number;
  /**
   * Whether the current holder is known to be gone (e.g. its node incarnation was declared dead);
   * then the candidate takes over by compare-and-set at once instead of waiting for the TTL.
   */
  isHolderDead?: (holder: string) => boolean;
}

/**
 * A standby for a lease: tries to acquire it every `retryEveryMs` until it holds it, and again
 * after losing it, until stopped. `onAcquired` fires on every acquisition with the held lease.
 */
export class LeaseCandidate implements AsyncDisposable {
  private current: Lease | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private attempt: Promise<void> | undefined;
  private readonly acquiredListeners = new Set<(lease: Lease) => void>();
  private readonly lostListeners = new Set<(reason: string) => void>();
  private readonly log: Logger;

  constructor(
    private readonly kv: KvStore,
    readonly key: string,
    readonly holder: string,
    private readonly opts: LeaseCandidateOptions,
  ) {
    checkLeaseArgs(kv, holder, opts);
    this.log = opts.log ?? silentLogger();
    this.schedule(0);
  }

  /** The lease while held. */
  get lease(): Lease | undefined {
    return this.current?.held ? this.current : undefined;
  }

  /** Whether this candidate holds the lease now. */
  get held(): boolean {
    return this.current?.held ?? false;
  }

  /** Called on every acquisition (again after a loss and a re-acquisition). */
  onAcquired(listener: (lease: Lease) => void): Unsubscribe {
    this.acquiredListeners.add(listener);
    return () => this.acquiredListeners.delete(listener);
  }

  /** Called when a held lease is lost (not when released by {@link stop}). */
  onLost(listener: (reason: string) => void): Unsubscribe {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /**
   * Stops trying and releases the lease if held; with `{ release: false }` abandons it instead
   * (stops renewing, leaves the key to expire or be taken over), as a crash would.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (opts.release === false) {
      if (this.current) abandonLease(this.current);
      this.current = undefined;
      return;
    }
    if (this.attempt) await Promise.race([this.attempt, sleepUnref(this.opts.ttlMs)]);
    const lease = this.current;
    this.current = undefined;
    await lease?.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.attempt = this.tryOnce().finally(() => (this.attempt = undefined));
    }, ms);
    this.timer.unref();
  }

  private async tryOnce(): Promise<void> {
    const retry = this.opts.retryEveryMs ?? this.opts.ttlMs / 4;
    let lease: Lease | undefined;
    try {
      lease = await acquireLease(this.kv, this.key, this.holder, this.opts);
      if (!lease && this.opts.isHolderDead) {
        const rec = await readLease(this.kv, this.key);
        if (rec && rec.holder !== this.holder && this.opts.isHolderDead(rec.holder)) {
          lease = await takeOverLease(this.kv, this.key, this.holder, rec.revision, this.opts);
          if (lease)
            this.log.info({ key: this.key, from: rec.holder }, "lease taken over from a dead holder");
        }
      }
    } catch (err) {
      this.log.debug({ err, key: this.key }, "lease attempt failed");
    }
    if (!lease) return this.schedule(retry);
    if (this.stopped) return void (await lease.release());
    this.current = lease;
    lease.onLost((reason) => {
      if (this.current === lease) this.current = undefined;
      this.emit(this.lostListeners, reason);
      this.schedule(retry);
    });
    this.emit(this.acquiredListeners, lease);
  }

  private emit<T>(listeners: Set<(v: T) => void>, value: T): void {
    for (const l of [...listeners]) {
      try {
        l(value);
      } catch (error) {
        setImmediate(() => this.log.error({ err: error }, "lease candidate listener threw"));
      }
    }
  }
}
