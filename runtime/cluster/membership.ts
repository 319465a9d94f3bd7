import type { Fence } from "../actor/index.js";
import { systemScheduler, type Scheduler, type Timer } from "../clock.js";
import { RateLimitedLog, silentLogger, type Logger } from "../log.js";
import { Metrics } from "../metrics.js";
import type { Transport, Unsubscribe } from "../transport/index.js";
import {
  DeadNotice,
  Heartbeat,
  deadNoticeSubject,
  decodeFrame,
  encodeFrame,
  frameFromSender,
  heartbeatSubject,
  membershipPatterns,
} from "./heartbeat.js";
import { MembershipTracker, type TrackerOptions } from "./tracker.js";
import { VerdictDesk } from "./verdict-desk.js";
import type { MembershipEvent, MembershipView, NodeInfo } from "./types.js";

/** What this node announces about itself in each heartbeat. */
export interface LocalInfo {
  slots: number;
  freeSlots: number;
  device: string;
  backend?: string;
  load: number;
  lagMs: number;
  actors: Record<string, number>;
  /** Process memory and the node's refusal counters, shown by dashboards; see {@link Heartbeat}. */
  rssBytes?: number;
  badInput?: number;
  deadLetters?: number;
}

/** Options of {@link Membership}. */
export interface MembershipOptions extends Omit<TrackerOptions, "self" | "log" | "now"> {
  transport: Transport;
  /** Cluster name (default `default`): subjects are `flock.<cluster>.hb.<node>` and `flock.<cluster>.dead.<by>`. */
  cluster?: string;
  nodeId: string;
  incarnation: string;
  /** Read at every heartbeat. */
  localInfo: () => LocalInfo;
  /**
   * Watch only: never tell a node it was declared dead. For clients (a job's submitter, the chaos
   * harness), whose view may lag under load and must not make healthy nodes rejoin.
   */
  observerOnly?: boolean;
  /** Clock of failure detection and timers of heartbeats and ticks (default {@link systemScheduler}). */
  scheduler?: Scheduler;
  log?: Logger;
  metrics?: Metrics;
}

/**
 * Membership over a transport: listens to every node's heartbeats (from construction on) and runs
 * failure detection on a {@link MembershipTracker}; publishes this node's own heartbeats once
 * {@link startHeartbeats} is called. It is the node's {@link MembershipView}.
 *
 * Detection pauses while this node's connection is down (it cannot hear anyone, which says nothing
 * about them) and restarts from zero once it is back, so a NATS server blip does not turn into a
 * death storm. An observer that hears from an incarnation it declared dead answers with a dead
 * notice; the node that receives one about itself must rejoin ({@link onDeclaredDead}).
 */
export class Membership implements MembershipView, AsyncDisposable {
  readonly tracker: MembershipTracker;
  readonly nodeId: string;
  readonly cluster: string;
  private inc: string;
  private seq = 0;
  private state: Heartbeat["state"] = "alive";
  private hbTimer: Timer | undefined;
  /** Holds the process open while heartbeats run (the scheduler's timers do not). */
  private keepAlive: NodeJS.Timeout | undefined;
  private nextBeatAt = 0;
  private lastBeatLagMs = 0;
  private readonly tickTimer: Timer;
  private readonly offs: Unsubscribe[] = [];
  /** When this incarnation ends on others' word (a majority's dead notices, or refuted verdicts). */
  private readonly verdicts: VerdictDesk;
  private readonly notified = new Map<string, number>();
  private foreign: { inc: string; at: number; beats: number; lastSeq: number } | undefined;
  private readonly log: Logger;
  private readonly rlog: RateLimitedLog;
  private readonly metrics: Metrics;
  private readonly clock: Scheduler;
  private stopped = false;

  constructor(private readonly opts: MembershipOptions) {
    this.nodeId = opts.nodeId;
    this.inc = opts.incarnation;
    this.cluster = opts.cluster ?? "default";
    this.log = opts.log ?? silentLogger();
    this.rlog = new RateLimitedLog(this.log);
    this.metrics = opts.metrics ?? new Metrics();
    this.metrics.declare(
      "flock_membership_bad_frames_total",
      "counter",
      "Heartbeat frames refused: undecodable or invalid, or sent under another node's subject",
      ["reason"],
    );
    this.clock = opts.scheduler ?? systemScheduler;
    const clock = this.clock;
    this.tracker = new MembershipTracker({
      ...opts,
      now: () => clock.now(),
      self: { node: opts.nodeId, inc: opts.incarnation },
      log: this.log,
    });
    const patterns = membershipPatterns(this.cluster);
    const onFrame = (data: Uint8Array, subject: string): void => this.onFrame(data, subject);
    this.offs.push(opts.transport.subscribe(patterns.heartbeats, onFrame));
    // An observer is never told it is dead, and its role may not read dead notices (tools/auth).
    if (!opts.observerOnly) this.offs.push(opts.transport.subscribe(patterns.deadNotices, onFrame));
    this.offs.push(
      opts.transport.onStatus((s) => {
        if (s.kind === "disconnected" || s.kind === "reconnecting") {
          if (!this.tracker.isPaused)
            this.log.warn({ status: s.kind }, "membership: connection down, failure detection paused");
          this.tracker.pause();
        } else if (s.kind === "reconnected" || s.kind === "connected") {
          if (this.tracker.isPaused)
            this.log.info(
              { status: s.kind },
              "membership: connection back, failure detection resumes from zero",
            );
          this.tracker.resume();
          if (this.hbTimer) this.beat();
        }
      }),
    );
    this.verdicts = new VerdictDesk({
      nodeId: this.nodeId,
      tracker: this.tracker,
      clock,
      metrics: this.metrics,
      log: this.log,
      rlog: this.rlog,
    });
    this.offs.push(this.tracker.subscribe((e) => this.onEvent(e)));
    const tickMs = Math.max(10, Math.min(100, this.tracker.timing.heartbeatMs / 4));
    this.tickTimer = this.clock.every(tickMs, () => this.tracker.tick());
  }

  // ---- MembershipView ----

  get epoch(): number {
    return this.tracker.epoch;
  }
  nodes(): NodeInfo[] {
    return this.tracker.nodes();
  }
  alive(): NodeInfo[] {
    return this.tracker.alive();
  }
  get(node: string): NodeInfo | undefined {
    return this.tracker.get(node);
  }
  subscribe(listener: (e: MembershipEvent) => void): Unsubscribe {
    return this.tracker.subscribe(listener);
  }
  get fence(): Fence {
    return this.tracker.fence;
  }
  /** Whether this incarnation of `node` ended (dead, superseded or left). */
  hasEnded(node: string, inc: string): boolean {
    return this.tracker.hasEnded(node, inc);
  }

  // ---- this node ----

  /** This node's current incarnation. */
  get incarnation(): string {
    return this.inc;
  }

  /** How late (ms) the last heartbeat timer fired: the heartbeat lag this node sees in itself. */
  get heartbeatLagMs(): number {
    return this.lastBeatLagMs;
  }

  /**
   * The incarnation of another live process heartbeating with this node's id, heard within
   * `withinMs`. Live means two successive heartbeats: one heartbeat may just be the last one a
   * killed process had in flight.
   */
  foreignSelf(withinMs: number): string | undefined {
    const f = this.foreign;
    return f && f.beats >= 2 && this.clock.now() - f.at <= withinMs ? f.inc : undefined;
  }

  /** Publishes a heartbeat now and then every heartbeat interval. */
  startHeartbeats(): void {
    if (this.stopped || this.hbTimer) return;
    // A node that heartbeats is alive: it keeps its process running, as its ref'd timer used to.
    this.keepAlive ??= setInterval(() => undefined, 1 << 30);
    this.nextBeatAt = this.clock.now();
    this.beat();
  }

  /** Stops publishing heartbeats (a crash, or the end of an incarnation). */
  stopHeartbeats(): void {
    this.hbTimer?.cancel();
    this.hbTimer = undefined;
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }

  /** Announces `leaving` (draining) or `left` (the goodbye) at once, and in every later heartbeat. */
  async announce(state: "leaving" | "left"): Promise<void> {
    this.state = state;
    this.publish();
    await this.opts.transport.flush().catch(() => undefined);
  }

  /** Switches to a new incarnation: the previous one ends here too; heartbeats restart on `startHeartbeats`. */
  rejoinAs(inc: string): void {
    this.stopHeartbeats();
    this.inc = inc;
    this.seq = 0;
    this.state = "alive";
    this.foreign = undefined;
    this.verdicts.reset();
    this.tracker.setSelf(this.nodeId, inc);
  }

  /**
   * Called (once per incarnation, with the reason) when this incarnation must end: a majority of
   * its peers declared it dead, or a lasting minority did, or its own verdicts on a majority were
   * refuted (see verdicts.ts).
   */
  onDeclaredDead(listener: (reason: string) => void): Unsubscribe {
    return this.verdicts.listen(listener);
  }

  /** Stops listening and publishing. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopHeartbeats();
    this.tickTimer.cancel();
    for (const off of this.offs.splice(0)) off();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ---- internals ----

  private beat(): void {
    this.hbTimer?.cancel();
    const now = this.clock.now();
    this.lastBeatLagMs = Math.max(0, now - this.nextBeatAt);
    this.metrics.set(
      "flock_heartbeat_lag_seconds",
      this.lastBeatLagMs / 1000,
      {},
      "How late this node's last heartbeat timer fired (seconds)",
    );
    this.publish();
    const period = this.tracker.timing.heartbeatMs;
    // Fixed rate; after a stall, start again from now rather than firing a burst of catch-up beats.
    this.nextBeatAt = Math.max(this.nextBeatAt + period, now + period / 2);
    this.hbTimer = this.clock.after(Math.max(0, this.nextBeatAt - now), () => this.beat());
  }

  private publish(): void {
    if (this.stopped) return;
    const info = this.opts.localInfo();
    const hb: Heartbeat = {
      t: "hb",
      v: 1,
      node: this.nodeId,
      inc: this.inc,
      seq: this.seq++,
      state: this.state,
      slots: info.slots,
      freeSlots: info.freeSlots,
      device: info.device,
      load: round(info.load),
      lagMs: round(info.lagMs),
      actors: info.actors,
      sentAt: Math.round(this.clock.now()),
    };
    if (info.backend !== undefined) hb.backend = info.backend;
    for (const key of ["rssBytes", "badInput", "deadLetters"] as const) {
      const v = info[key];
      if (v !== undefined && Number.isSafeInteger(v) && v >= 0) hb[key] = v;
    }
    // Our own view of ourselves does not depend on the echo coming back.
    this.tracker.observe(hb);
    try {
      this.opts.transport.publish(heartbeatSubject(this.cluster, this.nodeId), encodeFrame(hb));
      this.metrics.inc("flock_heartbeats_sent_total", {}, 1, "Heartbeats published");
    } catch (err) {
      this.rlog.warn("hb-publish", { err }, "heartbeat publish failed");
    }
  }

  private onFrame(data: Uint8Array, subject: string): void {
    if (this.stopped) return;
    const decoded = decodeFrame(data);
    if ("error" in decoded) return this.badFrame("invalid", decoded.error);
    const frame = decoded.frame;
    // The subject's last token is the publisher, which NATS permissions bind to its user: a frame
    // that speaks for another node is a forgery (or a bug), never evidence about that node.
    if (!frameFromSender(frame, subject))
      return this.badFrame(
        "sender-mismatch",
        `${frame.t} about ${frame.node} arrived on ${subject.slice(0, 300)}`,
      );
    if (frame.t === "dead") return this.onDeadNotice(frame);
    if (frame.node === this.nodeId && frame.inc === this.inc) return; // our own echo
    this.metrics.inc("flock_heartbeats_received_total", {}, 1, "Heartbeats received");
    const result = this.tracker.observe(frame);
    if (result === "stale" && frame.state !== "left" && !this.opts.observerOnly) {
      this.sendDeadNotice(frame.node, frame.inc);
      this.verdicts.outlived(frame.node, frame.inc);
    }
    if (result === "foreign-self" && frame.state !== "left") {
      const f = this.foreign;
      if (f && f.inc === frame.inc) {
        if (frame.seq > f.lastSeq)
          Object.assign(f, { at: this.clock.now(), beats: f.beats + 1, lastSeq: frame.seq });
      } else {
        this.foreign = { inc: frame.inc, at: this.clock.now(), beats: 1, lastSeq: frame.seq };
      }
      this.rlog.warn(
        "hb-foreign",
        { inc: frame.inc },
        `another process heartbeats as node ${this.nodeId} (incarnation ${frame.inc})`,
      );
    }
  }

  private badFrame(reason: "invalid" | "sender-mismatch", message: string): void {
    this.metrics.inc(
      "flock_membership_bad_frames_total",
      { reason },
      1,
      "Heartbeat frames refused: undecodable or invalid, or sent under another node's subject",
    );
    this.rlog.warn(`hb-bad:${reason}`, { reason }, message);
  }

  private onDeadNotice(notice: DeadNotice): void {
    if (notice.node !== this.nodeId || notice.inc !== this.inc || this.opts.observerOnly) return;
    this.verdicts.accused(notice.by);
  }

  private sendDeadNotice(node: string, inc: string): void {
    const key = `${node}:${inc}`;
    const now = this.clock.now();
    if (now - (this.notified.get(key) ?? -Infinity) < 1000) return;
    this.notified.set(key, now);
    if (this.notified.size > 1024) this.notified.delete(this.notified.keys().next().value!);
    const notice: DeadNotice = { t: "dead", v: 1, node, inc, by: this.nodeId };
    this.opts.transport.publish(deadNoticeSubject(this.cluster, this.nodeId), encodeFrame(notice));
  }

  private onEvent(e: MembershipEvent): void {
    this.metrics.set("flock_membership_epoch", e.epoch, {}, "Membership epoch of this node's view");
    const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const n of this.tracker.nodes()) counts[n.state] = (counts[n.state] ?? 0) + 1;
    for (const [state, n] of Object.entries(counts))
      this.metrics.set("flock_members", n, { state }, "Nodes in this node's view, by state");
    const level = e.kind === "dead" || e.kind === "suspect" ? "warn" : "info";
    this.log[level](
      { event: e.kind, member: e.node.node, inc: e.node.inc, epoch: e.epoch },
      `membership: ${e.node.node} ${e.kind}`,
    );
  }
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 100) / 100 : 0;
}
