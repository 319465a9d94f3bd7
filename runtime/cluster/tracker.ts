import type { Fence } from "../actor/index.js";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { Unsubscribe } from "../transport/index.js";
import type { Heartbeat } from "./heartbeat.js";
import type { MembershipEvent, MembershipView, NodeInfo } from "./types.js";

/** Timing of failure detection. */
export interface DetectionTiming {
  /** Heartbeat interval (default 500 ms). */
  heartbeatMs: number;
  /** Silence after which a node is suspect: about two missed beats (default 2.5 × heartbeatMs). */
  suspectAfterMs: number;
  /** Silence after which a node is dead (default 2000 ms). */
  deadAfterMs: number;
}

/** Fills in defaults and checks that suspect < dead. */
export function detectionTiming(t: Partial<DetectionTiming> = {}): DetectionTiming {
  const heartbeatMs = t.heartbeatMs ?? 500;
  const deadAfterMs = t.deadAfterMs ?? 2000;
  if (!(heartbeatMs > 0)) throw new RangeError(`heartbeatMs must be positive, got ${heartbeatMs}`);
  if (!(deadAfterMs > heartbeatMs))
    throw new RangeError(`deadAfterMs (${deadAfterMs}) must exceed heartbeatMs (${heartbeatMs})`);
  const suspectAfterMs = Math.min(t.suspectAfterMs ?? heartbeatMs * 2.5, deadAfterMs * 0.75);
  return { heartbeatMs, suspectAfterMs, deadAfterMs };
}

/** Options of {@link MembershipTracker}. */
export interface TrackerOptions extends Partial<DetectionTiming> {
  /** This node: never declared suspect or dead by its own tracker. */
  self?: { node: string; inc: string };
  /** Dead and left nodes leave `nodes()` after this much more silence (default 5 minutes). */
  forgetAfterMs?: number;
  /**
   * The most silence one `tick` may add (default heartbeatMs). A longer gap between two ticks means
   * this process itself was stalled (a long synchronous op, SIGSTOP, a slow GC); time that passed
   * while it could not listen is no evidence against the others.
   */
  maxTickCreditMs?: number;
  /** Monotonic clock, ms (default `performance.now`). */
  now?: () => number;
  /** Wall clock for `lastSeen`/`joinedAt`, display only (default `Date.now`). */
  wallNow?: () => number;
  log?: Logger;
  /**
   * Most node ids with a record (default 4096). Heartbeats are wire input: a new node id when the
   * view is full evicts the oldest dead or fenced record, or is not taken in when every record is live.
   */
  maxNodes?: number;
  /** Most node ids whose ended incarnations are remembered for fencing (default 4096; oldest go first). */
  maxEndedNodes?: number;
  /** Where evictions and refusals are counted ({@link TRACKER_EVICTIONS_METRIC}). */
  metrics?: Metrics;
}

/** Counter of what the tracker's bounds pushed out (label `map`: `nodes`, `ended`, or `refused`). */
export const TRACKER_EVICTIONS_METRIC = "flock_membership_evictions_total";

interface Rec {
  info: NodeInfo;
  /** Silence in observer-awake time: grows on ticks (capped per tick), reset by a heartbeat. */
  silentMs: number;
  /** A left incarnation whose messages are now refused (its goodbye came, or it went silent). */
  fenced: boolean;
}

/** Keep at most this many ended incarnations per node id for fencing. */
const MAX_ENDED_PER_NODE = 64;

/**
 * One observer's membership view as a pure state machine: heartbeats in (`observe`), time in
 * (`tick`), events out. No timers and no network, so it runs on an injected clock in tests.
 *
 * States of an incarnation: alive ⇄ suspect → dead, and alive/suspect → left. Dead and left are
 * final for that incarnation; a node comes back only as a new incarnation, which ends the old one.
 * Every state change bumps the epoch and emits one event.
 */
export class MembershipTracker implements MembershipView {
  readonly timing: DetectionTiming;
  private ep = 0;
  private readonly recs = new Map<string, Rec>();
  /** Incarnations that ended (dead, superseded, or left and fenced), by node id. */
  private readonly ended = new Map<string, string[]>();
  private readonly listeners = new Set<(e: MembershipEvent) => void>();
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly maxCredit: number;
  private readonly forgetAfterMs: number;
  private readonly maxNodes: number;
  private readonly maxEndedNodes: number;
  private lastTick: number;
  private paused = false;
  private me: { node: string; inc: string } | undefined;

  constructor(private readonly opts: TrackerOptions = {}) {
    this.timing = detectionTiming(opts);
    this.now = opts.now ?? (() => performance.now());
    this.wallNow = opts.wallNow ?? Date.now;
    this.maxCredit = opts.maxTickCreditMs ?? this.timing.heartbeatMs;
    this.forgetAfterMs = opts.forgetAfterMs ?? 5 * 60_000;
    this.maxNodes = opts.maxNodes ?? 4096;
    this.maxEndedNodes = opts.maxEndedNodes ?? 4096;
    this.lastTick = this.now();
    this.me = opts.self;
  }

  get epoch(): number {
    return this.ep;
  }

  /** This node's id and current incarnation, if set. */
  get self(): { node: string; inc: string } | undefined {
    return this.me;
  }

  nodes(): NodeInfo[] {
    return [...this.recs.values()].map((r) => copy(r.info)).sort((a, b) => a.node.localeCompare(b.node));
  }

  alive(): NodeInfo[] {
    return this.nodes().filter((n) => n.state === "alive");
  }

  get(node: string): NodeInfo | undefined {
    const r = this.recs.get(node);
    return r && copy(r.info);
  }

  subscribe(listener: (e: MembershipEvent) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Refuses envelopes whose `inc` is an ended incarnation of the sender's node; unknown senders pass. */
  readonly fence: Fence = (env) => {
    if (!env.inc) return undefined;
    const slash = env.from.indexOf("/");
    const node = slash > 0 ? env.from.slice(0, slash) : env.from;
    return this.hasEnded(node, env.inc) ? "stale-incarnation" : undefined;
  };

  /** Whether this incarnation of `node` ended: dead, superseded by a newer one, or left. */
  hasEnded(node: string, inc: string): boolean {
    return this.ended.get(node)?.includes(inc) ?? false;
  }

  /**
   * Takes in one heartbeat. Returns `stale` when it comes from an ended incarnation (its sender
   * should be told it was declared dead), `foreign-self` when another process claims this node's
   * id, else `ok`.
   */
  observe(hb: Heartbeat): "ok" | "stale" | "foreign-self" {
    if (this.hasEnded(hb.node, hb.inc)) return "stale";
    if (this.me && hb.node === this.me.node && hb.inc !== this.me.inc) return "foreign-self";
    const wall = this.wallNow();
    let rec = this.recs.get(hb.node);
    if (rec && rec.info.inc !== hb.inc) {
      // A new incarnation of a known node: the one we knew is over, whatever we thought of it.
      this.end(rec, "dead");
      this.recs.delete(hb.node);
      rec = undefined;
    }
    if (!rec) {
      if (!this.makeRoom()) return "ok"; // counted; a live node keeps beating, and is taken in once there is room
      const info: NodeInfo = {
        ...fields(hb),
        state: hb.state === "alive" ? "alive" : "left",
        lastSeen: wall,
        joinedAt: wall,
      };
      rec = { info, silentMs: 0, fenced: false };
      this.recs.set(hb.node, rec);
      this.emit(hb.state === "alive" ? "joined" : "left", rec.info);
      if (hb.state === "left") this.fenceLeft(rec);
      return "ok";
    }
    Object.assign(rec.info, fields(hb), { lastSeen: wall });
    rec.silentMs = 0;
    if (hb.state === "alive" && rec.info.state === "suspect") this.transition(rec, "alive");
    if (hb.state !== "alive" && rec.info.state !== "left") this.transition(rec, "left");
    if (hb.state === "left") this.fenceLeft(rec);
    return "ok";
  }

  /** Advances time: silent nodes become suspect, then dead; left nodes get fenced; old ones forgotten. */
  tick(): void {
    const now = this.now();
    const gap = now - this.lastTick;
    this.lastTick = now;
    const credit = this.paused ? 0 : Math.min(Math.max(0, gap), this.maxCredit);
    if (gap > this.maxCredit * 2)
      this.opts.log?.warn(
        { gapMs: Math.round(gap), creditedMs: credit },
        "membership: this process was stalled; not counting the stall against others",
      );
    const { suspectAfterMs, deadAfterMs } = this.timing;
    for (const rec of [...this.recs.values()]) {
      if (this.isMe(rec.info)) continue;
      rec.silentMs += credit;
      const s = rec.info.state;
      if ((s === "alive" || s === "suspect") && rec.silentMs > deadAfterMs) this.end(rec, "dead");
      else if (s === "alive" && rec.silentMs > suspectAfterMs) this.transition(rec, "suspect");
      else if (s === "left" && !rec.fenced && rec.silentMs > deadAfterMs) this.fenceLeft(rec);
      else if (
        (s === "dead" || (s === "left" && rec.fenced)) &&
        rec.silentMs > deadAfterMs + this.forgetAfterMs
      )
        this.recs.delete(rec.info.node);
    }
  }

  /** Stops counting silence (this node cannot hear anyone: its connection is down). */
  pause(): void {
    this.paused = true;
  }

  /** Counts silence again, from zero: a full deadline after the connection came back. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.lastTick = this.now();
    for (const rec of this.recs.values()) if (rec.info.state !== "dead" && !rec.fenced) rec.silentMs = 0;
  }

  /** Whether silence is not being counted. */
  get isPaused(): boolean {
    return this.paused;
  }

  /**
   * Takes back this node's verdict on incarnation `inc` of `node` (it was wrong: see verdicts.ts):
   * its heartbeats are taken in again, as a node that joins.
   */
  pardon(node: string, inc: string): void {
    const list = this.ended.get(node);
    if (list?.includes(inc)) {
      const rest = list.filter((i) => i !== inc);
      if (rest.length > 0) this.ended.set(node, rest);
      else this.ended.delete(node);
    }
    const rec = this.recs.get(node);
    if (rec && rec.info.inc === inc && rec.info.state === "dead") this.recs.delete(node);
  }

  /** This node rejoined as a new incarnation: the previous one ended. */
  setSelf(node: string, inc: string): void {
    const prev = this.me;
    this.me = { node, inc };
    if (!prev || prev.inc === inc) return;
    const rec = this.recs.get(prev.node);
    if (rec && rec.info.inc === prev.inc) {
      this.end(rec, "dead");
      this.recs.delete(prev.node);
    } else {
      this.remember(prev.node, prev.inc);
    }
  }

  private isMe(info: NodeInfo): boolean {
    return this.me !== undefined && info.node === this.me.node && info.inc === this.me.inc;
  }

  /** Ends an incarnation: dead (with an event unless it already was dead or left). */
  private end(rec: Rec, state: "dead"): void {
    this.remember(rec.info.node, rec.info.inc);
    if (rec.info.state === "left") {
      rec.fenced = true;
      return;
    }
    if (rec.info.state !== state) this.transition(rec, state);
  }

  private fenceLeft(rec: Rec): void {
    rec.fenced = true;
    this.remember(rec.info.node, rec.info.inc);
  }

  private remember(node: string, inc: string): void {
    const list = this.ended.get(node) ?? [];
    if (!list.includes(inc)) list.push(inc);
    if (list.length > MAX_ENDED_PER_NODE) list.shift();
    // Re-inserted, so the map's order is least recently ended first: that node id is evicted first.
    this.ended.delete(node);
    this.ended.set(node, list);
    for (const oldest of this.ended.keys()) {
      if (this.ended.size <= this.maxEndedNodes) break;
      this.ended.delete(oldest);
      this.count("ended");
    }
  }

  /**
   * Whether a new node id may get a record: below the cap, or after evicting the oldest record
   * that is over (dead, or left and fenced: its incarnation is remembered in `ended` either way).
   */
  private makeRoom(): boolean {
    if (this.recs.size < this.maxNodes) return true;
    for (const [node, rec] of this.recs) {
      if (rec.info.state === "dead" || (rec.info.state === "left" && rec.fenced)) {
        this.recs.delete(node);
        this.count("nodes");
        return true;
      }
    }
    this.count("refused");
    return false;
  }

  private count(map: "nodes" | "ended" | "refused"): void {
    this.opts.metrics?.inc(
      TRACKER_EVICTIONS_METRIC,
      { map },
      1,
      "Membership records pushed out by the view's bounds",
    );
  }

  private transition(rec: Rec, state: NodeInfo["state"]): void {
    rec.info.state = state;
    const kind: MembershipEvent["kind"] = state;
    this.emit(kind, rec.info);
  }

  private emit(kind: MembershipEvent["kind"], info: NodeInfo): void {
    const event: MembershipEvent = { kind, node: copy(info), epoch: ++this.ep };
    for (const l of [...this.listeners]) {
      try {
        l(event);
      } catch (error) {
        // A listener's bug must not corrupt the view; report it off this stack.
        setImmediate(() =>
          this.opts.log
            ? this.opts.log.error({ err: error }, "membership listener threw")
            : process.emitWarning(String(error)),
        );
      }
    }
  }
}

function fields(hb: Heartbeat): Omit<NodeInfo, "state" | "lastSeen" | "joinedAt"> {
  const out: Omit<NodeInfo, "state" | "lastSeen" | "joinedAt"> = {
    node: hb.node,
    inc: hb.inc,
    slots: hb.slots,
    freeSlots: hb.freeSlots,
    device: hb.device,
    load: hb.load,
    lagMs: hb.lagMs,
    actors: { ...hb.actors },
  };
  if (hb.backend !== undefined) out.backend = hb.backend;
  return out;
}

function copy(info: NodeInfo): NodeInfo {
  return { ...info, actors: { ...info.actors } };
}

/**
 * Whether a lease holder named `<nodeId>:<incarnation>` is gone by this view: its incarnation ended,
 * or the view knows a newer one, or it is dead or left. Unknown nodes count as not (yet) dead.
 */
export function isHolderDead(view: MembershipView, holder: string): boolean {
  const i = holder.lastIndexOf(":");
  if (i <= 0) return false;
  const node = holder.slice(0, i);
  const inc = holder.slice(i + 1);
  const ended = (view as Partial<Pick<MembershipTracker, "hasEnded">>).hasEnded;
  if (typeof ended === "function" && ended.call(view, node, inc)) return true;
  const info = view.get(node);
  if (!info) return false;
  return info.inc !== inc || info.state === "dead" || info.state === "left";
}
