/**
 * The range ledger of a distributed prediction run, as a pure machine: the input cut into ranges,
 * ranges handed to ready predictor nodes (a few in flight per node, only within a window past the
 * next range to release, so held results stay bounded), a range whose node died, failed or timed
 * out handed out again, the first answer of a range from a node it was sent to accepted and every
 * other answer ignored, and results released strictly in input order. No timers, no network: time
 * comes in with each call, commands go out.
 * @module
 */

/** Sizes and deadlines of a run. */
export interface LedgerOptions {
  records: number;
  /** Records per range (a multiple of the predict batch, so batches are the same in every mode). */
  rangeSize: number;
  /** Ranges in flight per node at most. */
  perNode: number;
  /** Ranges past the next one to release that may be handed out (bounds the results held). */
  window: number;
  /** A range unanswered this long is handed out again (its node may still answer it). */
  timeoutMs: number;
}

/** What the shell does: ask `node` to predict a range, or write a range's results out. */
export type LedgerCommand =
  | { kind: "send"; node: string; range: number; attempt: number; start: number; end: number }
  | { kind: "release"; range: number; start: number; end: number };

/** Per-node counts of a run. */
export interface NodeCounts {
  /** Ranges sent to it (attempts). */
  taken: number;
  /** Its answers accepted. */
  answered: number;
}

/** What a run did, for its result and progress. */
export interface LedgerStats {
  ranges: number;
  released: number;
  recordsReleased: number;
  /** Ranges handed out again after their node died, failed or timed out. */
  redone: number;
  /** Answers ignored: a range already answered, an attempt never sent, or a node it was not sent to. */
  ignored: number;
  timeouts: number;
  /** Nodes that left the run while it ran. */
  lost: string[];
  nodes: Record<string, NodeCounts>;
}

interface Attempt {
  node: string;
  deadline: number;
  /** Counted against its node's in-flight budget (not yet answered, failed, timed out or lost). */
  live: boolean;
}

interface Range {
  start: number;
  end: number;
  done: boolean;
  attempts: Map<number, Attempt>;
}

/** The ledger of one run (see the module comment). */
export class RangeLedger {
  private readonly ranges: Range[];
  private readonly inFlight = new Map<string, number>();
  private nextAttempt = 0;
  private released = 0;
  private readonly stats_: LedgerStats;

  constructor(private readonly opts: LedgerOptions) {
    if (!(opts.rangeSize >= 1 && opts.perNode >= 1 && opts.window >= 1))
      throw new RangeError("bad ledger options");
    this.ranges = [];
    for (let start = 0; start < opts.records; start += opts.rangeSize)
      this.ranges.push({
        start,
        end: Math.min(opts.records, start + opts.rangeSize),
        done: false,
        attempts: new Map(),
      });
    this.stats_ = {
      ranges: this.ranges.length,
      released: 0,
      recordsReleased: 0,
      redone: 0,
      ignored: 0,
      timeouts: 0,
      lost: [],
      nodes: {},
    };
  }

  /** Whether every range has been released. */
  get done(): boolean {
    return this.released === this.ranges.length;
  }

  /** Nodes that may be sent ranges now. */
  get readyNodes(): string[] {
    return [...this.inFlight.keys()].sort();
  }

  /** A copy of the run's counts. */
  stats(): LedgerStats {
    return structuredClone(this.stats_);
  }

  /** A node's predictor is ready: it may be sent ranges. */
  nodeReady(node: string, now: number): LedgerCommand[] {
    if (!this.inFlight.has(node)) this.inFlight.set(node, 0);
    this.stats_.nodes[node] ??= { taken: 0, answered: 0 };
    return this.assign(now);
  }

  /** The nodes alive now: a ready node not among them is lost, and its unanswered ranges go to others. */
  nodesAlive(alive: readonly string[], now: number): LedgerCommand[] {
    const set = new Set(alive);
    for (const node of [...this.inFlight.keys()]) if (!set.has(node)) this.dropNode(node);
    return this.assign(now);
  }

  /** A node's predictor cannot serve (it failed to load, or an ask to it failed): it gets no more ranges. */
  nodeFailed(node: string, now: number): LedgerCommand[] {
    if (this.inFlight.has(node)) this.dropNode(node);
    return this.assign(now);
  }

  /** An attempt's request failed before an answer (its node stays, the range goes out again). */
  attemptFailed(range: number, attempt: number, now: number): LedgerCommand[] {
    const a = this.ranges[range]?.attempts.get(attempt);
    if (a?.live) this.retire(a, true);
    return this.assign(now);
  }

  /**
   * An answer from `node` for `range`'s `attempt`: accepted (`true`) when that attempt was sent
   * to `node` and the range has no answer yet; anything else is ignored and counted.
   */
  answered(
    node: string,
    range: number,
    attempt: number,
    now: number,
  ): { accepted: boolean; commands: LedgerCommand[] } {
    const r = this.ranges[range];
    const a = r?.attempts.get(attempt);
    if (!r || !a || a.node !== node || r.done) {
      this.stats_.ignored++;
      return { accepted: false, commands: [] };
    }
    r.done = true;
    this.stats_.nodes[node]!.answered++; // set when the node became ready
    for (const other of r.attempts.values()) if (other.live) this.retire(other, false);
    return { accepted: true, commands: [...this.releaseInOrder(), ...this.assign(now)] };
  }

  /** Time passes: attempts past their deadline stop counting against their node, and their ranges go out again. */
  tick(now: number): LedgerCommand[] {
    for (const r of this.window())
      for (const a of r.attempts.values())
        if (a.live && a.deadline <= now) {
          this.stats_.timeouts++;
          this.retire(a, true);
        }
    return this.assign(now);
  }

  /** The ranges that may be handed out: unreleased, within the window. */
  private window(): Range[] {
    return this.ranges.slice(this.released, this.released + this.opts.window);
  }

  private dropNode(node: string): void {
    this.inFlight.delete(node);
    this.stats_.lost.push(node);
    // A lost node's attempts are forgotten: an answer it still gets out is not taken (a timed-out
    // attempt's is, as its node is still a member).
    for (const r of this.window())
      for (const [id, a] of r.attempts)
        if (a.node === node) {
          if (a.live) this.retire(a, true);
          r.attempts.delete(id);
        }
  }

  /** An attempt no longer counts against its node; `redo`: its range needs another (when unanswered). */
  private retire(a: Attempt, redo: boolean): void {
    a.live = false;
    const n = this.inFlight.get(a.node);
    if (n !== undefined) this.inFlight.set(a.node, n - 1);
    if (redo) this.stats_.redone++;
  }

  private releaseInOrder(): LedgerCommand[] {
    const out: LedgerCommand[] = [];
    for (let r = this.ranges[this.released]; r?.done; r = this.ranges[this.released]) {
      out.push({ kind: "release", range: this.released, start: r.start, end: r.end });
      this.stats_.released++;
      this.stats_.recordsReleased += r.end - r.start;
      r.attempts.clear(); // released: later answers are ignored as unknown attempts
      this.released++;
    }
    return out;
  }

  /** Hands unanswered ranges without a live attempt, in order, to the least busy ready node with room. */
  private assign(now: number): LedgerCommand[] {
    const out: LedgerCommand[] = [];
    this.window().forEach((r, i) => {
      if (r.done || [...r.attempts.values()].some((a) => a.live)) return;
      // Another node than one that already had this range, when one has room.
      const node = this.pickNode(new Set([...r.attempts.values()].map((a) => a.node)));
      if (node === undefined) return;
      const attempt = this.nextAttempt++;
      r.attempts.set(attempt, { node, deadline: now + this.opts.timeoutMs, live: true });
      this.inFlight.set(node, this.inFlight.get(node)! + 1); // pickNode returns a key of inFlight
      this.stats_.nodes[node]!.taken++;
      out.push({ kind: "send", node, range: this.released + i, attempt, start: r.start, end: r.end });
    });
    return out;
  }

  /** The ready node with room and the fewest ranges in flight (by name on a tie), preferring those not in `avoid`. */
  private pickNode(avoid: ReadonlySet<string>): string | undefined {
    let best: string | undefined;
    let bestKey = Infinity;
    for (const [node, n] of [...this.inFlight].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const key = n + (avoid.has(node) ? this.opts.perNode : 0);
      if (n < this.opts.perNode && key < bestKey) [best, bestKey] = [node, key];
    }
    return best;
  }
}
