import { systemScheduler, type Scheduler, type Timer } from "../clock.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { KvConflictError, type KvStore, type StoreProvider } from "../store/index.js";
import type { Unsubscribe } from "../transport/index.js";
import { abandon, registerAbandon } from "./abandon.js";
import { HeldLease, decodeLease, encodeLease, type LeaseOptions } from "./held-lease.js";
import type { Lease } from "./types.js";

export type { LeaseOptions } from "./held-lease.js";

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
  const clock = opts.scheduler ?? systemScheduler;
  const sentAt = clock.now();
  try {
    const revision = await write(encodeLease(holder, sentAt, opts.meta));
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

/** Options of {@link LeaseCandidate}. */
export interface LeaseCandidateOptions extends LeaseOptions {
  /** Pause between attempts while someone else holds the lease (default ttlMs / 4). */
  retryEveryMs?: number;
  /**
   * Whether the current holder is known to be gone (e.g. its node incarnation was declared dead);
   * then the candidate takes over by compare-and-set instead of waiting for the TTL, once the
   * holder's revision has stood still for 1.5 renew intervals. A view can be wrong (it flaps while
   * the store is slow); a holder that still renews is never taken over, whatever the view says.
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
  private timer: Timer | undefined;
  private attempt: Promise<void> | undefined;
  private readonly acquiredListeners = new Set<(lease: Lease) => void>();
  private readonly lostListeners = new Set<(reason: string) => void>();
  private readonly log: Logger;
  private readonly clock: Scheduler;
  /** The other holder's revision as last read, and since when it has stood still. */
  private sighting: { holder: string; revision: number; since: number } | undefined;

  constructor(
    private readonly kv: KvStore,
    readonly key: string,
    readonly holder: string,
    private readonly opts: LeaseCandidateOptions,
  ) {
    checkLeaseArgs(kv, holder, opts);
    this.log = opts.log ?? silentLogger();
    this.clock = opts.scheduler ?? systemScheduler;
    registerAbandon(this, () => this.abandon());
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

  /** Stops trying and releases the lease if held. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    if (this.attempt) await Promise.race([this.attempt, this.clock.sleep(this.opts.ttlMs)]);
    const lease = this.current;
    this.current = undefined;
    await lease?.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Stops trying and stops renewing a held lease without releasing it (a dead process). */
  private async abandon(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    if (this.current) await abandon(this.current);
    this.current = undefined;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer?.cancel();
    this.timer = this.clock.after(ms, () => {
      this.attempt = this.tryOnce().finally(() => (this.attempt = undefined));
    });
  }

  private async tryOnce(): Promise<void> {
    const retry = this.opts.retryEveryMs ?? this.opts.ttlMs / 4;
    let lease: Lease | undefined;
    try {
      lease = await this.acquireOrTakeOver();
    } catch (err) {
      this.log.debug({ err, key: this.key }, "lease attempt failed");
    }
    if (!lease) return this.schedule(this.soonerWhenDead(retry));
    if (this.stopped) return void (await lease.release());
    this.current = lease;
    lease.onLost((reason) => {
      if (this.current === lease) this.current = undefined;
      this.emit(this.lostListeners, reason);
      this.schedule(retry);
    });
    this.emit(this.acquiredListeners, lease);
  }

  private async acquireOrTakeOver(): Promise<Lease | undefined> {
    const lease = await acquireLease(this.kv, this.key, this.holder, this.opts);
    if (lease || !this.opts.isHolderDead) {
      this.sighting = undefined;
      return lease;
    }
    const rec = await readLease(this.kv, this.key);
    if (!rec || rec.holder === this.holder) {
      this.sighting = undefined;
      return undefined;
    }
    const now = this.clock.now();
    const s = this.sighting;
    if (!s || s.holder !== rec.holder || s.revision !== rec.revision) {
      this.sighting = { holder: rec.holder, revision: rec.revision, since: now };
      return undefined;
    }
    if (!this.opts.isHolderDead(rec.holder) || now - s.since < this.stillFor()) return undefined;
    const taken = await takeOverLease(this.kv, this.key, this.holder, rec.revision, this.opts);
    if (taken) {
      this.sighting = undefined;
      this.log.info(
        { key: this.key, from: rec.holder, stillMs: now - s.since },
        "lease taken over from a dead holder",
      );
    }
    return taken;
  }

  /** While a holder seen dead stands still, the next look is due when its window closes. */
  private soonerWhenDead(retry: number): number {
    const s = this.sighting;
    if (!s || !this.opts.isHolderDead?.(s.holder)) return retry;
    const left = s.since + this.stillFor() - this.clock.now();
    return Math.max(10, Math.min(retry, left + 5));
  }

  /** How long a holder's revision must stand still before a dead verdict may act on it. */
  private stillFor(): number {
    return 1.5 * (this.opts.renewEveryMs ?? this.opts.ttlMs / 3);
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
