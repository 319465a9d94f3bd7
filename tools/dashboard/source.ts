/**
 * The dashboard's inputs, as an observer hears them: every node's heartbeats, every job's live
 * events topic, and reads of the membership view and the jobs bucket (what `flock status` reads).
 * Only I/O: each input is checked (sender token, schema, the job its subject names) and handed on
 * as a {@link DashEvent}; what it means is decided by the fold in `view.ts`.
 * @module
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import { JobEvent } from "../../messages/index.js";
import { senderMismatch, senderOf, topicPattern } from "../../runtime/actor/subjects.js";
import { systemScheduler, type Scheduler, type Timer } from "../../runtime/clock.js";
import { decodeFrame, frameFromSender, membershipPatterns } from "../../runtime/cluster/heartbeat.js";
import { openJobsBucket, readJobRecords } from "../../runtime/cluster/jobs.js";
import { readClusterView } from "../../runtime/cluster/monitor.js";
import { RateLimitedLog, type Logger } from "../../runtime/log.js";
import { Metrics } from "../../runtime/metrics.js";
import type { StoreProvider } from "../../runtime/store/index.js";
import type { Transport, Unsubscribe } from "../../runtime/transport/index.js";
import { Wire } from "../../runtime/wire.js";
import { REPORT_HTML_FILE } from "../report/report.js";
import type { DashEvent, DashState } from "./types.js";
import { decodeJob } from "../../actors/coordinator/codec.js";
import { JOB_STATE_BUCKET } from "../../actors/job/names.js";

/** Options of {@link ClusterSource}. */
export interface ClusterSourceOptions {
  transport: Transport;
  stores: StoreProvider;
  cluster: string;
  /** Receives every input, in order. */
  onEvent: (e: DashEvent) => void;
  /** The state now, to know which ended jobs still lack a report link. */
  state: () => DashState;
  /** Where `flock train` writes reports (`<dir>/<job>/report.html`); none: no links. */
  reportDir?: string;
  /** Time between two `tick`s (default 250 ms) and two reads of the buckets (default 1000 ms). */
  tickMs?: number;
  readMs?: number;
  scheduler?: Scheduler;
  log: Logger;
}

/** Job ids the dashboard links reports for: one path segment, nothing a path could climb out with. */
const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** Subscribes to the cluster and reads its buckets until {@link stop}. */
export class ClusterSource {
  private readonly offs: Unsubscribe[] = [];
  private readonly timers: Timer[] = [];
  private readonly wire: Wire;
  private readonly clock: Scheduler;
  private readonly rlog: RateLimitedLog;
  private reading = false;
  private stopped = false;
  /** Ended jobs whose durable record was read for their result (pruned to the jobs in view). */
  private resultsRead = new Set<string>();

  constructor(private readonly opts: ClusterSourceOptions) {
    this.clock = opts.scheduler ?? systemScheduler;
    this.rlog = new RateLimitedLog(opts.log);
    this.wire = new Wire(opts.transport, new Metrics(), opts.log, {}, { senderOf });
  }

  /** Starts listening and reading. */
  start(): void {
    const { transport, cluster } = this.opts;
    this.offs.push(
      transport.subscribe(membershipPatterns(cluster).heartbeats, (d, s) => this.onHeartbeat(d, s)),
    );
    this.offs.push(this.wire.onBadInput(() => this.refused()));
    this.offs.push(
      this.wire.listen(topicPattern(cluster, "job.*.events"), (env, s) => this.onJobEnvelope(env, s)),
    );
    this.timers.push(
      this.clock.every(this.opts.tickMs ?? 250, () => this.emit({ type: "tick", at: this.now() })),
    );
    this.timers.push(this.clock.every(this.opts.readMs ?? 1000, () => void this.read()));
    void this.read();
  }

  /** Unsubscribes and stops the timers. */
  stop(): void {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    for (const t of this.timers.splice(0)) t.cancel();
    this.wire.close();
  }

  private now(): number {
    return Math.round(this.clock.now());
  }

  private emit(e: DashEvent): void {
    if (!this.stopped) this.opts.onEvent(e);
  }

  private refused(): void {
    this.emit({ type: "refused", at: this.now() });
  }

  private onHeartbeat(data: Uint8Array, subject: string): void {
    const decoded = decodeFrame(data);
    // Only heartbeats published under their own node's subject (NATS binds it to the node's user).
    if ("error" in decoded || decoded.frame.t !== "hb" || !frameFromSender(decoded.frame, subject))
      return this.refused();
    this.emit({ type: "heartbeat", hb: decoded.frame, at: this.now() });
  }

  private onJobEnvelope(env: { type: string; from: string; body: unknown }, subject: string): void {
    // `flock.<c>.from.<sender>.topic.job.<job>.events`: the job token is the third from the end.
    const job = subject.split(".").at(-2);
    const parsed = JobEvent.safeParse(env.body);
    if (
      senderMismatch(subject, env.from) ||
      !parsed.success ||
      parsed.data.type !== env.type ||
      parsed.data.job !== job
    )
      return this.refused();
    this.emit({ type: "job-event", event: parsed.data, at: this.now() });
  }

  /** One read of the membership view and the jobs bucket (skipped while the previous one runs). */
  private async read(): Promise<void> {
    if (this.reading || this.stopped) return;
    this.reading = true;
    try {
      const [view, jobs] = await Promise.all([
        readClusterView(this.opts.stores),
        openJobsBucket(this.opts.stores).then(readJobRecords),
      ]);
      if (view) this.emit({ type: "view", view, at: this.now() });
      this.emit({ type: "jobs", records: jobs.jobs, at: this.now() });
      await this.findReports();
      await this.findStoredResults();
    } catch (err) {
      this.rlog.warn("read", { err }, "dashboard: cannot read the cluster's buckets yet; will retry");
    } finally {
      this.reading = false;
    }
  }

  /**
   * The result of each ended job the page has none for (it ended before the dashboard heard it
   * live), read once per job from the job's durable record (`jobstate`, key = job id).
   */
  private async findStoredResults(): Promise<void> {
    const jobs = this.opts.state().jobs;
    const inView = new Set(jobs.map((j) => j.id));
    for (const id of this.resultsRead) if (!inView.has(id)) this.resultsRead.delete(id);
    const missing = jobs.filter(
      (j) => j.endedAt !== null && j.result === null && !this.resultsRead.has(j.id),
    );
    if (missing.length === 0) return;
    const kv = await this.opts.stores.kv(JOB_STATE_BUCKET);
    for (const j of missing) {
      this.resultsRead.add(j.id);
      const entry = await kv.get(j.id);
      if (!entry) continue;
      let result;
      try {
        result = decodeJob(entry.value).result;
      } catch {
        this.refused();
        continue;
      }
      if (result) this.emit({ type: "stored-result", job: j.id, result, at: this.now() });
    }
  }

  /** Links the report of each ended job that has one under the report folder. */
  private async findReports(): Promise<void> {
    const dir = this.opts.reportDir;
    if (dir === undefined) return;
    for (const j of this.opts.state().jobs) {
      if (j.report !== null || j.endedAt === null || !SAFE_ID.test(j.id)) continue;
      const found = await access(join(dir, j.id, REPORT_HTML_FILE)).then(
        () => true,
        () => false,
      );
      if (found)
        this.emit({
          type: "report",
          job: j.id,
          path: `/reports/${j.id}/${REPORT_HTML_FILE}`,
          at: this.now(),
        });
    }
  }
}
