/**
 * A lease this process holds: renewal by compare-and-set, loss detection, release. Created by
 * `acquireLease` / `takeOverLease` (lease.ts); its timers come from the injected scheduler.
 * @module
 */
import { systemScheduler, type Scheduler, type Timer } from "../clock.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { KvConflictError, landedRevision, type KvStore } from "../store/index.js";
import type { Unsubscribe } from "../transport/index.js";
import { registerAbandon } from "./abandon.js";
import type { Lease } from "./types.js";

/** Options of `acquireLease` and `takeOverLease`. */
export interface LeaseOptions {
  /** Lifetime of the lease without renewal; must equal the TTL of the bucket it lives in. */
  ttlMs: number;
  /** Renewal period (default ttlMs / 3). */
  renewEveryMs?: number;
  /** Extra JSON fields stored with the lease, for whoever reads it. */
  meta?: Record<string, unknown>;
  /** Clock and timers of renewal and expiry (default {@link systemScheduler}). */
  scheduler?: Scheduler;
  log?: Logger;
}

/** The bytes a holder writes: its id, the caller's meta, and when (informational). */
export function encodeLease(holder: string, now: number, meta: Record<string, unknown> = {}): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ ...meta, holder, writtenAt: Math.round(now) }));
}

/** A lease this process holds, renewing itself until lost or released. */
export class HeldLease implements Lease {
  private lost = false;
  private released = false;
  private confirmedAt: number;
  private rev: number;
  private inFlight: Promise<void> | undefined;
  /** When the first renewal since the last confirmed one went out unanswered (it may have landed). */
  private unconfirmedSince: number | undefined;
  private readonly listeners = new Set<(reason: string) => void>();
  private readonly renewTimer: Timer;
  private expiryTimer: Timer | undefined;
  private retryTimer: Timer | undefined;
  private readonly clock: Scheduler;
  private readonly log: Logger;
  private readonly value: Uint8Array;
  private readonly renewEveryMs: number;

  constructor(
    private readonly kv: KvStore,
    readonly key: string,
    readonly holder: string,
    revision: number,
    sentAt: number,
    private readonly opts: LeaseOptions,
  ) {
    this.clock = opts.scheduler ?? systemScheduler;
    this.log = opts.log ?? silentLogger();
    this.value = encodeLease(holder, this.clock.now(), opts.meta);
    this.rev = revision;
    this.confirmedAt = sentAt;
    this.renewEveryMs = opts.renewEveryMs ?? opts.ttlMs / 3;
    this.renewTimer = this.clock.every(this.renewEveryMs, () => this.renew());
    this.armExpiry();
    registerAbandon(this, () => this.abandon());
  }

  get revision(): number {
    return this.rev;
  }

  get held(): boolean {
    return !this.lost && !this.released && this.clock.now() - this.confirmedAt < this.opts.ttlMs;
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
    if (this.inFlight) await Promise.race([this.inFlight, this.clock.sleep(this.opts.ttlMs)]);
    if (this.lost || this.inFlight) return;
    try {
      await this.kv.delete(this.key, this.rev);
    } catch (err) {
      // Someone already took it, or the store is unreachable: the TTL frees it in any case.
      if (!(err instanceof KvConflictError))
        this.log.debug({ err, key: this.key }, "lease release failed; it will expire");
    }
  }

  /** Stops renewing without deleting the key (a dead process): the TTL or a takeover frees it. */
  private abandon(): void {
    if (this.released) return;
    this.released = true;
    this.stopTimers();
  }

  private renew(): void {
    if (this.lost || this.released || this.inFlight) return;
    if (this.clock.now() - this.confirmedAt >= this.opts.ttlMs)
      return this.lose(`not renewed within ${this.opts.ttlMs} ms`);
    const sentAt = this.clock.now();
    this.inFlight = this.kv.update(this.key, this.value, this.rev).then(
      (rev) => this.afterRenewed(rev, sentAt),
      (err: unknown) => {
        this.inFlight = undefined;
        if (err instanceof KvConflictError) return void this.afterConflict();
        // Unconfirmed: try again soon; the expiry timer ends the lease if this goes on for ttl.
        // The write may still have landed (its answer lost): remember when the first such went out.
        this.unconfirmedSince ??= sentAt;
        this.log.debug({ err, key: this.key }, "lease renewal failed; retrying");
        this.retryTimer = this.clock.after(Math.min(250, this.renewEveryMs / 2), () => this.renew());
      },
    );
  }

  private afterRenewed(rev: number, sentAt: number): void {
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
    if (since === undefined) return this.loseMoved(moved);
    this.inFlight = landedRevision(this.kv, this.key, this.value).then(
      (landed) => {
        this.inFlight = undefined;
        if (this.lost || this.released) return;
        if (landed === undefined) return this.loseMoved(moved);
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
    this.expiryTimer?.cancel();
    const left = this.confirmedAt + this.opts.ttlMs - this.clock.now();
    this.expiryTimer = this.clock.after(Math.max(0, left) + 1, () => {
      if (!this.held && !this.lost && !this.released)
        this.lose(`no renewal confirmed within ${this.opts.ttlMs} ms`);
      else if (!this.lost && !this.released) this.armExpiry();
    });
  }

  /**
   * Lost to a moved revision: also says (best effort, after the fact) what the key holds now, so a
   * log tells an expiry (absent), a successor (its holder and revision) and a server that lost the
   * write (the same holder at an older revision) apart.
   */
  private loseMoved(reason: string): void {
    const lostRevision = this.rev;
    const confirmedAgoMs = this.clock.now() - this.confirmedAt;
    this.lose(reason);
    void this.kv.get(this.key).then(
      (e) =>
        this.log.warn(
          {
            key: this.key,
            lostRevision,
            confirmedAgoMs,
            now: e ? { revision: e.revision, holder: decodeLease(e.value)?.holder } : "absent",
          },
          "lease lost: what the key holds now",
        ),
      () => undefined,
    );
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
    this.renewTimer.cancel();
    this.expiryTimer?.cancel();
    this.retryTimer?.cancel();
  }
}

/** A lease record's holder and extra fields, or undefined when it does not decode. */
export function decodeLease(
  value: Uint8Array,
): { holder: string; meta: Record<string, unknown> } | undefined {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(value));
    if (typeof parsed !== "object" || parsed === null) return undefined;
    const { holder, ...meta } = parsed as Record<string, unknown>;
    if (typeof holder !== "string") return undefined;
    return { holder, meta };
  } catch {
    return undefined;
  }
}
