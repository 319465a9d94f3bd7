/**
 * The orphan watcher of a flock node: a local actor that scans the job-state bucket and the
 * coordinators' lease bucket every few seconds, asks {@link decideAdoptions} which orphaned jobs
 * this node adopts, and spawns their coordinator candidates here. It only does I/O; the rule is
 * `orphans.ts`'s. One watcher per actor system: it starts with each incarnation of the node (the
 * kinds' setup runs again after a rejoin) and stops with its system.
 * @module
 */
import type { Behavior, Message } from "../../runtime/actor/index.js";
import { systemScheduler, type Scheduler, type Timer } from "../../runtime/clock.js";
import { readLease } from "../../runtime/cluster/lease.js";
import type { MembershipView } from "../../runtime/cluster/types.js";
import type { Logger } from "../../runtime/log.js";
import type { Metrics } from "../../runtime/metrics.js";
import type { KvStore } from "../../runtime/store/types.js";
import { decodeJob, JobStateDecodeError } from "../coordinator/codec.js";
import { IgnoredMessages } from "../ignored.js";
import { jobNames } from "./names.js";
import {
  DEFAULT_ORPHAN_POLICY,
  decideAdoptions,
  needsRecord,
  startWatch,
  type OrphanPolicy,
  type OrphanWatch,
  type Scan,
  type ScannedJob,
  type ViewedNode,
} from "./orphans.js";
import type { JobSpec } from "./spec.js";

/** Counter of orphaned jobs this node adopted (a coordinator candidate spawned here). */
export const ADOPTED_METRIC = "flock_orphans_adopted_total";
/** Counter of job-state records (or keys) the watcher skipped because they do not decode. */
export const MALFORMED_METRIC = "flock_orphans_malformed_records_total";
/** Gauge of the jobs the last scan saw orphaned. */
export const ORPHANED_METRIC = "flock_orphans_seen";

/** Job ids as the coordinator kind accepts them (its spawn arguments' schema). */
const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** What the watcher needs from its node. */
export interface OrphanWatcherHost {
  nodeId: string;
  membership: MembershipView;
  /** The job-state bucket. */
  stateKv(): Promise<KvStore>;
  /** The coordinators' lease bucket. */
  leaseKv(): Promise<KvStore>;
  /** Whether a coordinator candidate of `job` lives on this node. */
  hasCoordinator(job: string): boolean;
  /** Spawns a coordinator candidate of `job` here; an existing one counts as done. */
  spawnCoordinator(job: string, spec: JobSpec): Promise<void>;
  metrics: Metrics;
  log: Logger;
}

/** Options of the watcher. */
export interface OrphanWatcherOptions {
  scheduler?: Scheduler;
  /** Pause between scans (default 2000 ms). */
  scanEveryMs?: number;
  /**
   * Longest pause after failed scans (default 30 s): each failure in a row doubles the pause, so a
   * store that is down or recovering is not asked for its keys (a consumer each) every interval.
   */
  maxBackoffMs?: number;
  policy?: OrphanPolicy;
}

/** A terminal record stays terminal; it is read again only this often, in case it was rewritten. */
const TERMINAL_RECHECK_MS = 60_000;

/** One scan's reading: the jobs for the rule, and the specs of those that may be adopted. */
interface Reading {
  jobs: ScannedJob[];
  complete: boolean;
  specs: Map<string, JobSpec>;
}

/** Scans on a timer and adopts what the rule says; see the module comment. */
export class OrphanWatcher {
  private watch: OrphanWatch;
  private timer: Timer | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private cursor = 0;
  /** Failed scans in a row, and the time before which none is tried. */
  private failures = 0;
  private resumeAt = 0;
  /** Jobs whose record was terminal, with when it was read (bounded like the rule's memory). */
  private readonly terminal = new Map<string, { state: "finished" | "failed"; at: number }>();
  private readonly clock: Scheduler;
  private readonly policy: OrphanPolicy;

  constructor(
    private readonly host: OrphanWatcherHost,
    private readonly opts: OrphanWatcherOptions = {},
  ) {
    this.clock = opts.scheduler ?? systemScheduler;
    this.policy = opts.policy ?? DEFAULT_ORPHAN_POLICY;
    this.watch = startWatch(this.clock.now());
  }

  /** Scans now, then every `scanEveryMs`; a scan still running when the next is due is not doubled. */
  start(): void {
    this.tick();
    this.timer = this.clock.every(this.opts.scanEveryMs ?? 2_000, () => this.tick());
  }

  /** Stops scanning (a scan in flight adopts nothing more). */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** One scan, awaited (the timer's scans are not). */
  async scanOnce(): Promise<string[]> {
    const reading = await this.read();
    if (this.stopped) return [];
    const outcome = decideAdoptions(this.watch, this.scanOf(reading), this.policy);
    this.watch = outcome.watch;
    this.host.metrics.set(ORPHANED_METRIC, outcome.orphaned, {}, "Running jobs the last scan saw orphaned");
    const adopted: string[] = [];
    for (const job of outcome.adopt) {
      const spec = reading.specs.get(job);
      if (!spec || this.stopped) continue;
      try {
        await this.host.spawnCoordinator(job, spec);
        adopted.push(job);
        this.host.metrics.inc(ADOPTED_METRIC, {}, 1, "Orphaned jobs this node adopted (coordinator spawned)");
        this.host.log.warn({ job }, "adopted an orphaned job: its coordinator candidate now runs here");
      } catch (err) {
        this.host.log.warn(
          { job, err },
          "could not spawn a coordinator for an orphaned job; next scan retries",
        );
      }
    }
    return adopted;
  }

  private tick(): void {
    if (this.stopped || this.running || this.clock.now() < this.resumeAt) return;
    this.running = this.scanOnce()
      .then(() => {
        this.failures = 0;
      })
      .catch((err: Error) => {
        this.failures++;
        const every = this.opts.scanEveryMs ?? 2_000;
        const pause = Math.min(
          this.opts.maxBackoffMs ?? 30_000,
          every * 2 ** Math.min(this.failures - 1, 16),
        );
        this.resumeAt = this.clock.now() + pause;
        this.host.log.debug(
          { err, failures: this.failures, pauseMs: pause },
          "orphan scan failed; retrying later",
        );
      })
      .finally(() => (this.running = undefined));
  }

  private scanOf(reading: Reading): Scan {
    const local = new Set(reading.jobs.filter((j) => this.host.hasCoordinator(j.job)).map((j) => j.job));
    return {
      nodeId: this.host.nodeId,
      jobs: reading.jobs,
      complete: reading.complete,
      nodes: this.viewed(),
      local,
      now: this.clock.now(),
    };
  }

  private viewed(): ViewedNode[] {
    return this.host.membership.nodes().map((n) => ({ node: n.node, inc: n.inc, state: n.state }));
  }

  /** Keys (one window of at most `maxJobsPerPass`, rotating), each job's lease, and the records that matter. */
  private async read(): Promise<Reading> {
    const [state, leases] = [await this.host.stateKv(), await this.host.leaseKv()];
    const keys = await state.keys();
    const valid = keys.filter((k) => JOB_ID.test(k));
    if (valid.length < keys.length) this.malformed("key", keys.length - valid.length);
    const max = Math.max(1, this.policy.maxJobsPerPass);
    const complete = valid.length <= max;
    if (this.cursor >= valid.length) this.cursor = 0;
    const window = complete ? valid : [...valid, ...valid].slice(this.cursor, this.cursor + max);
    this.cursor = complete ? 0 : (this.cursor + max) % valid.length;
    const nodes = this.viewed();
    const reading: Reading = { jobs: [], complete, specs: new Map() };
    for (const job of window) {
      if (this.stopped) break;
      const holder = (await readLease(leases, jobNames.leaseKey(job)))?.holder;
      if (!needsRecord(nodes, holder)) {
        reading.jobs.push({ job, state: undefined, holder });
        continue;
      }
      const record = await this.record(state, job);
      if (!record) continue;
      reading.jobs.push({ job, state: record.state, holder });
      if (record.spec) reading.specs.set(job, record.spec);
    }
    return reading;
  }

  /** A job's state (and its spec when running), or undefined when the record is gone or malformed. */
  private async record(
    kv: KvStore,
    job: string,
  ): Promise<{ state: "running" | "finished" | "failed"; spec?: JobSpec } | undefined> {
    const now = this.clock.now();
    const known = this.terminal.get(job);
    if (known && now - known.at < TERMINAL_RECHECK_MS) return { state: known.state };
    const entry = await kv.get(job);
    if (!entry) return undefined;
    try {
      const saved = decodeJob(entry.value);
      if (saved.job !== job) return void this.malformed("record");
      if (saved.state === "running") return { state: "running", spec: saved.spec };
      this.terminal.delete(job);
      this.terminal.set(job, { state: saved.state, at: now });
      for (const key of this.terminal.keys())
        if (this.terminal.size > 4 * this.policy.maxJobsPerPass) this.terminal.delete(key);
      return { state: saved.state };
    } catch (err) {
      if (!(err instanceof JobStateDecodeError)) throw err;
      this.malformed("record");
      return undefined;
    }
  }

  private malformed(what: "key" | "record", n = 1): void {
    this.host.metrics.inc(
      MALFORMED_METRIC,
      { what },
      n,
      "Job-state keys or records the orphan watcher skipped (malformed)",
    );
  }
}

/**
 * The watcher as a local actor (`orphan-watcher`): it scans from spawn until its system stops.
 * It takes no messages: whatever reaches it is hostile or misaddressed, ignored and counted.
 */
export function orphanWatcherBehavior(
  host: OrphanWatcherHost,
  opts: OrphanWatcherOptions = {},
): Behavior<Message, OrphanWatcher> {
  const ignored = new IgnoredMessages("orphan-watcher", host.metrics);
  return {
    init() {
      const watcher = new OrphanWatcher(host, opts);
      watcher.start();
      return watcher;
    },
    receive(_watcher, msg, ctx) {
      ignored.unhandled(ctx, msg.type, "no-messages");
    },
    stopped(watcher) {
      watcher.stop();
    },
  };
}
