import { addRange, containsRange, lengthOf, subtractRange, takeFront, type Range } from "./intervals.js";

/** A lease on positions of one epoch's sample order, held by one data loader. */
export interface ShardLease {
  id: string;
  epoch: number;
  holder: string;
  /** Positions leased and not yet committed. */
  ranges: Range[];
}

/** One batch a trainer computed on: a slice of one lease. */
export interface BatchRef {
  lease: string;
  epoch: number;
  start: number;
  end: number;
}

/** What the ledger found when it checked itself (the chaos harness's audit). */
export interface LedgerAudit {
  /** Per finished or current epoch: samples committed, positions committed more than once, positions never committed. */
  epochs: Array<{ epoch: number; committed: number; duplicates: number; missing: number }>;
  /** Every finished epoch committed each sample exactly once. */
  exact: boolean;
}

/** A refused ledger operation (a batch outside its lease, a stale epoch...). */
export class LedgerError extends Error {
  override name = "LedgerError";
}

/** The ledger's state, as persisted in the coordinator's KV record. */
export interface LedgerState {
  size: number;
  epochs: number;
  epoch: number;
  next: number;
  pool: Range[];
  leases: ShardLease[];
  seq: number;
  counts: Uint8Array;
  history: Array<{ epoch: number; committed: number; duplicates: number; missing: number }>;
}

/**
 * The shard ledger: every epoch counts each sample in exactly one committed step, whatever fails.
 * Positions `0..size-1` of each epoch's (seeded) sample order are leased out in ranges; a batch's
 * positions are done only when the step that included it commits; positions of a lease whose
 * holder died, or of a batch left out of a step, return to the pool and are leased again.
 */
export class ShardLedger {
  private constructor(private s: LedgerState) {}

  /** A fresh ledger over `size` samples for `epochs` epochs. */
  static create(size: number, epochs: number): ShardLedger {
    return new ShardLedger({
      size,
      epochs,
      epoch: 0,
      next: 0,
      pool: [],
      leases: [],
      seq: 0,
      counts: new Uint8Array(size),
      history: [],
    });
  }

  /**
   * Restores a persisted ledger. `minSeq`: lease ids go on from at least there — a rollback to an
   * older ledger must not hand out ids the abandoned timeline used (a late report of one would
   * match another loader's lease of the same id).
   */
  static restore(state: LedgerState, minSeq = 0): ShardLedger {
    return new ShardLedger({
      ...state,
      seq: Math.max(state.seq, minSeq),
      counts: new Uint8Array(state.counts),
      pool: state.pool.map((r) => [r[0], r[1]]),
      leases: state.leases.map((l) => ({ ...l, ranges: l.ranges.map((r) => [r[0], r[1]] as Range) })),
      history: [...state.history],
    });
  }

  /** A copy for persistence. */
  snapshot(): LedgerState {
    return ShardLedger.restore(this.s).s;
  }

  get epoch(): number {
    return this.s.epoch;
  }

  /** The sequence number the next lease id takes. */
  get leaseSeq(): number {
    return this.s.seq;
  }

  get epochs(): number {
    return this.s.epochs;
  }

  get size(): number {
    return this.s.size;
  }

  /** Whether every epoch is done. */
  get finished(): boolean {
    return this.s.epoch >= this.s.epochs;
  }

  /** Samples committed in the current epoch. */
  get committedThisEpoch(): number {
    let n = 0;
    for (const c of this.s.counts) if (c > 0) n++;
    return n;
  }

  /** Samples committed per finished epoch. */
  samplesPerEpoch(): number[] {
    return this.s.history.map((h) => h.committed);
  }

  /** Leases up to `count` positions of the current epoch to `holder`; an empty lease when none is free now. */
  lease(holder: string, count: number): ShardLease | undefined {
    if (this.finished || count <= 0) return undefined;
    const fromPool = takeFront(this.s.pool, count);
    this.s.pool = fromPool.rest;
    let ranges = fromPool.taken;
    const more = Math.min(count - lengthOf(ranges), this.s.size - this.s.next);
    if (more > 0) {
      ranges = addRangeAll(ranges, [[this.s.next, this.s.next + more]]);
      this.s.next += more;
    }
    if (ranges.length === 0) return undefined;
    const lease: ShardLease = { id: `L${this.s.epoch}-${this.s.seq++}`, epoch: this.s.epoch, holder, ranges };
    this.s.leases.push(lease);
    return structuredClone(lease);
  }

  /**
   * Checks a batch lies inside a live lease of the current epoch (before its gradient counts);
   * with `holder`, a lease of that holder.
   */
  check(batch: BatchRef, holder?: string): void {
    const lease = this.s.leases.find((l) => l.id === batch.lease);
    if (!lease) throw new LedgerError(`batch of lease ${batch.lease}: no such live lease`);
    if (holder !== undefined && lease.holder !== holder)
      throw new LedgerError(`batch of lease ${batch.lease}: the lease is ${lease.holder}'s, not ${holder}'s`);
    if (lease.epoch !== batch.epoch)
      throw new LedgerError(
        `batch of lease ${batch.lease}: epoch ${batch.epoch}, lease is of epoch ${lease.epoch}`,
      );
    if (!containsRange(lease.ranges, [batch.start, batch.end]))
      throw new LedgerError(`batch [${batch.start}, ${batch.end}) is not inside lease ${lease.id}`);
  }

  /** Marks the batches of a committed step done; finishes the epoch when every sample is done. */
  commit(batches: readonly BatchRef[]): void {
    for (const b of batches) this.check(b);
    for (const b of batches) {
      const lease = this.s.leases.find((l) => l.id === b.lease)!;
      lease.ranges = subtractRange(lease.ranges, [b.start, b.end]).rest;
      // A committed batch lies inside its lease, so within the epoch: p < size = counts.length.
      for (let p = b.start; p < b.end; p++) this.s.counts[p] = Math.min(255, this.s.counts[p]! + 1);
    }
    this.s.leases = this.s.leases.filter((l) => l.ranges.length > 0);
    this.maybeFinishEpoch();
  }

  /** Returns a batch's positions to the pool (its gradient was left out of the step); with `holder`, only from its lease. */
  returnBatch(batch: BatchRef, holder?: string): void {
    const lease = this.s.leases.find((l) => l.id === batch.lease);
    if (!lease || lease.epoch !== this.s.epoch || (holder !== undefined && lease.holder !== holder)) return;
    const { rest, removed } = subtractRange(lease.ranges, [batch.start, batch.end]);
    if (removed === 0) return;
    lease.ranges = rest;
    this.s.pool = addRange(this.s.pool, [batch.start, batch.end]);
    this.s.leases = this.s.leases.filter((l) => l.ranges.length > 0);
  }

  /** Returns every outstanding position of a holder's leases to the pool (it died or left). */
  revoke(holder: string): number {
    let returned = 0;
    for (const lease of this.s.leases.filter((l) => l.holder === holder)) {
      for (const r of lease.ranges) {
        this.s.pool = addRange(this.s.pool, r);
        returned += r[1] - r[0];
      }
    }
    this.s.leases = this.s.leases.filter((l) => l.holder !== holder);
    return returned;
  }

  /** Returns every outstanding lease to the pool (a new coordinator took over; loaders drop theirs). */
  revokeAll(): void {
    for (const holder of new Set(this.s.leases.map((l) => l.holder))) this.revoke(holder);
  }

  /** Positions leased and not yet committed, by holder. */
  outstanding(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const l of this.s.leases) out[l.holder] = (out[l.holder] ?? 0) + lengthOf(l.ranges);
    return out;
  }

  /** Counts of every finished epoch and the current one. */
  audit(): LedgerAudit {
    const current = this.finished ? [] : [{ epoch: this.s.epoch, ...countEpoch(this.s.counts) }];
    const epochs = [...this.s.history, ...current];
    return {
      epochs,
      exact: this.s.history.every(
        (h) => h.duplicates === 0 && h.missing === 0 && h.committed === this.s.size,
      ),
    };
  }

  private maybeFinishEpoch(): void {
    if (this.s.next < this.s.size || this.s.pool.length > 0 || this.s.leases.length > 0) return;
    if (this.committedThisEpoch < this.s.size) return;
    this.s.history.push({ epoch: this.s.epoch, ...countEpoch(this.s.counts) });
    this.s.epoch++;
    this.s.next = 0;
    this.s.counts = new Uint8Array(this.s.size);
  }
}

function countEpoch(counts: Uint8Array): { committed: number; duplicates: number; missing: number } {
  let committed = 0;
  let duplicates = 0;
  let missing = 0;
  for (const c of counts) {
    if (c === 0) missing++;
    else committed++;
    if (c > 1) duplicates++;
  }
  return { committed, duplicates, missing };
}

function addRangeAll(ranges: Range[], more: Range[]): Range[] {
  let out = ranges;
  for (const r of more) out = addRange(out, r);
  return out;
}
