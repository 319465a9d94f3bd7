/**
 * Retention of ended jobs: a job that finished or failed more than the retention period ago loses
 * its checkpoints, its state record, its `flock jobs` line and its lease key, so the object store
 * and the buckets stay bounded however many jobs a cluster runs. The decision ({@link expiredJobs})
 * is pure; {@link JobJanitor} does the reading and the deleting, on one node per job (the first of
 * the rendezvous ranking the orphan watcher uses), a bounded number of jobs per pass. Deletes are
 * idempotent: two nodes with different views deleting the same job do no harm.
 * @module
 */
import type { Behavior, Message } from "../../runtime/actor/index.js";
import { systemScheduler, type Scheduler, type Timer } from "../../runtime/clock.js";
import type { Logger } from "../../runtime/log.js";
import type { Metrics } from "../../runtime/metrics.js";
import type { BlobStore, KvStore } from "../../runtime/store/types.js";
import { decodeJob, JobStateDecodeError } from "../coordinator/codec.js";
import type { PersistedJob } from "../coordinator/state.js";
import { IgnoredMessages } from "../ignored.js";
import { jobNames } from "./names.js";
import { adopters } from "./orphans.js";

/** Default retention of an ended job's record and checkpoints: 7 days. */
export const DEFAULT_JOB_RETENTION_MS = 7 * 24 * 3600 * 1000;
/** Counter of ended jobs whose record and checkpoints the janitor deleted. */
export const EXPIRED_METRIC = "flock_jobs_expired_total";

/** One ended job as the janitor sees it. */
export interface EndedJob {
  job: string;
  /** Wall-clock ms the job ended. */
  endedAt: number;
}

/**
 * When a job ended: its record's `endedAt`, else (a record written before `endedAt` existed) its
 * start plus its result's wall time, else its start — never later than the truth, so an old
 * record is not kept forever; undefined while it runs.
 */
export function endedAt(p: PersistedJob): number | undefined {
  if (p.state === "running") return undefined;
  if (p.endedAt !== undefined) return p.endedAt;
  return p.startedAt + (p.result ? p.result.wallSeconds * 1000 : 0);
}

/**
 * The ended jobs this node deletes now: ended at least `retentionMs` before `now`, and this node
 * first in the job's rendezvous ranking among `alive` (every node computes the same ranking).
 */
export function expiredJobs(
  jobs: readonly EndedJob[],
  nodeId: string,
  alive: readonly string[],
  now: number,
  retentionMs: number,
): string[] {
  const nodes = alive.includes(nodeId) ? alive : [...alive, nodeId];
  return jobs
    .filter((j) => now - j.endedAt >= retentionMs && adopters(j.job, nodes, 1)[0] === nodeId)
    .map((j) => j.job);
}

/** What the janitor needs from its node. */
export interface JanitorHost {
  nodeId: string;
  aliveNodes(): string[];
  stateKv(): Promise<KvStore>;
  jobsKv(): Promise<KvStore>;
  leaseKv(): Promise<KvStore>;
  blobs(): Promise<BlobStore>;
  metrics: Metrics;
  log: Logger;
}

/** Options of the janitor. */
export interface JanitorOptions {
  scheduler?: Scheduler;
  /** How long an ended job is kept (default {@link DEFAULT_JOB_RETENTION_MS}). */
  retentionMs?: number;
  /** Pause between passes (default 5 min; the first pass runs one pause after the start). */
  everyMs?: number;
  /** Records read per pass (default 256). */
  maxJobsPerPass?: number;
}

/** Deletes what {@link expiredJobs} names, on a timer; see the module comment. */
export class JobJanitor {
  private timer: Timer | undefined;
  private running = false;
  private cursor = 0;
  private readonly clock: Scheduler;

  constructor(
    private readonly host: JanitorHost,
    private readonly opts: JanitorOptions = {},
  ) {
    this.clock = opts.scheduler ?? systemScheduler;
  }

  /** Runs a pass every `everyMs`. */
  start(): void {
    this.timer = this.clock.every(this.opts.everyMs ?? 300_000, () => void this.tick());
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.running || !this.timer) return;
    this.running = true;
    try {
      await this.passOnce();
    } catch (err) {
      this.host.log.debug({ err }, "job retention pass failed; the next one retries");
    } finally {
      this.running = false;
    }
  }

  /** One pass: reads a window of records, deletes the expired jobs this node owns; returns them. */
  async passOnce(): Promise<string[]> {
    const state = await this.host.stateKv();
    const keys = await state.keys();
    const max = Math.max(1, this.opts.maxJobsPerPass ?? 256);
    if (this.cursor >= keys.length) this.cursor = 0;
    const window = keys.length <= max ? keys : [...keys, ...keys].slice(this.cursor, this.cursor + max);
    this.cursor = keys.length <= max ? 0 : (this.cursor + max) % keys.length;
    const ended: EndedJob[] = [];
    const revisions = new Map<string, number>();
    for (const job of window) {
      const entry = await state.get(job);
      if (!entry) continue;
      try {
        const saved = decodeJob(entry.value);
        const at = saved.job === job ? endedAt(saved) : undefined;
        if (at !== undefined) ended.push({ job, endedAt: at });
        revisions.set(job, entry.revision);
      } catch (err) {
        if (!(err instanceof JobStateDecodeError)) throw err; // a malformed record: the watcher counts it
      }
    }
    const now = this.clock.now();
    const expired = expiredJobs(ended, this.host.nodeId, this.host.aliveNodes(), now, this.retentionMs);
    const deleted: string[] = [];
    for (const job of expired) if (await this.delete(job, revisions.get(job) ?? -1)) deleted.push(job);
    return deleted;
  }

  private get retentionMs(): number {
    return this.opts.retentionMs ?? DEFAULT_JOB_RETENTION_MS;
  }

  /**
   * Checkpoints first, the state record last (compare-and-delete on the revision read): a pass
   * cut short leaves the record to try again. A record rewritten since it was read (a new job
   * under a reused id) is left alone, and so is everything of its job.
   */
  private async delete(job: string, revision: number): Promise<boolean> {
    const state = await this.host.stateKv();
    if ((await state.get(job))?.revision !== revision) return false;
    const blobs = await this.host.blobs();
    for (const name of await blobs.list(jobNames.checkpointPrefix(job))) await blobs.delete(name);
    await (await this.host.jobsKv()).delete(job);
    await (await this.host.leaseKv()).delete(jobNames.leaseKey(job));
    await state.delete(job, revision);
    this.host.metrics.inc(EXPIRED_METRIC, {}, 1, "Ended jobs whose record and checkpoints were deleted");
    this.host.log.info(
      { job, retentionMs: this.retentionMs },
      "deleted an ended job's record and checkpoints (retention)",
    );
    return true;
  }
}

/**
 * The janitor as a local actor (`job-janitor`): passes from spawn until its system stops. It takes
 * no messages: whatever reaches it is hostile or misaddressed, ignored and counted.
 */
export function janitorBehavior(host: JanitorHost, opts: JanitorOptions = {}): Behavior<Message, JobJanitor> {
  const ignored = new IgnoredMessages("job-janitor", host.metrics);
  return {
    init() {
      const janitor = new JobJanitor(host, opts);
      janitor.start();
      return janitor;
    },
    receive(_janitor, msg, ctx) {
      ignored.unhandled(ctx, msg.type, "no-messages");
    },
    stopped(janitor) {
      janitor.stop();
    },
  };
}
