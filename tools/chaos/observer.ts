/**
 * What the harness sees of a job while it runs: the committed steps, hash checks and membership
 * events from the job's events topic, plus the coordinator's lease from JetStream KV.
 * @module
 */
import { connect, type NatsConnection } from "nats";
import { stepsToCount, type JobEvent } from "../../messages/index.js";
import { openLeaseBucket, readLease } from "../../runtime/cluster/lease.js";
import { JetStreamStores } from "../../runtime/store/jetstream.js";
import type { KvStore } from "../../runtime/store/types.js";
import { jobNames } from "../../actors/job/names.js";
import { JOBS_BUCKET } from "../../runtime/cluster/jobs.js";
import { COORDINATOR_LEASE_MS } from "../../actors/kinds.js";
import { JOB_STATE_BUCKET } from "../../actors/job/names.js";
import { decodeJob } from "../../actors/coordinator/codec.js";
import type { PersistedJob } from "../../actors/coordinator/state.js";
import type { ObservedHash, ObservedStep } from "./invariants.js";
import { parseRestore } from "./steps.js";

/** Where the observed step events went back to an earlier step (a restore from a checkpoint). */
export interface ObservedRollback {
  /** The step rolled back to (the checkpoint's); the next step event is `to + 1`. */
  to: number;
  /** Highest step observed before it. */
  from: number;
  /** Whether a restore record announced it (else the step events alone showed it). */
  announced: boolean;
}

/** A job's events as they arrive, and the latest state they imply. */
export class JobObserver {
  readonly steps: ObservedStep[] = [];
  readonly hashes: ObservedHash[] = [];
  readonly membership: Array<{ kind: string; node: string; step: number; at: number; detail?: string }> = [];
  readonly rollbacks: ObservedRollback[] = [];
  /** Highest committed step seen, members at that commit, and when it committed (wall ms). */
  step = 0;
  members = 0;
  lastCommitAt = 0;
  lastAccuracy: number | undefined;
  private readonly seen = new Set<number>();

  /** Records one event (runJob's `onEvent`). */
  add(e: JobEvent): void {
    switch (e.type) {
      case "job.step":
        // A step again that is no replay: the job went back (a restore whose record was not
        // announced), or a step was committed twice — the invariants tell which from the
        // result's restore records. Either way the steps after it count anew.
        if (!e.replay && e.step <= this.step)
          this.rollBack(Math.min(e.step, ...(e.earlier ?? []).map((x) => x.step)) - 1, false);
        // Steps whose own events were lost come first (from this event's `earlier`); a replay of
        // a step already seen counts nothing.
        for (const s of stepsToCount(e, this.seen)) {
          this.steps.push({ step: s.step, epoch: s.epoch, samples: s.samples, at: s.at });
          if (s.step >= this.step) {
            this.step = s.step;
            this.members = s.members;
          }
          this.lastCommitAt = Math.max(this.lastCommitAt, s.at);
        }
        break;
      case "job.hash":
        this.hashes.push({ version: e.version, consistent: e.consistent, hashes: e.hashes });
        break;
      case "job.membership": {
        // Announced at the first commit after the restore, before that step's own event.
        const restore = e.event.kind === "failover" ? parseRestore(e.event.detail) : undefined;
        if (restore) this.rollBack(restore.to, true);
        this.membership.push({
          kind: e.event.kind,
          node: e.event.node,
          step: e.step,
          at: e.at,
          detail: e.event.detail,
        });
        break;
      }
      case "job.eval":
        this.lastAccuracy = e.accuracy;
        break;
      default:
        break;
    }
  }

  /**
   * The job went back to step `to`: steps after it are committed anew (a new timeline), so they
   * count again, and a replay or an `earlier` entry of the new timeline is not taken for one of
   * the abandoned timeline. A restore record after the step events already showed it counts once.
   */
  private rollBack(to: number, announced: boolean): void {
    const last = this.rollbacks.at(-1);
    if (announced && last && !last.announced && last.to === to) {
      last.announced = true;
      return;
    }
    this.rollbacks.push({ to, from: this.step, announced });
    for (const s of [...this.seen]) if (s > to) this.seen.delete(s);
    this.step = Math.min(this.step, to);
  }

  /**
   * Seconds from a fault at `at` (wall ms) to the commit of the first step that started after it,
   * or undefined when none committed. A step starts when the one before it commits, so that is the
   * second commit after `at`: the first may be a step that was already in flight, finished before
   * the fault could touch it. (Measuring to the first commit reports ~0 s for a fault that stalls
   * the job for seconds whenever a commit was on the wire.)
   */
  recoveryAfter(at: number): number | undefined {
    const after = [...new Set(this.steps.filter((s) => s.at > at).map((s) => s.at))].sort((a, b) => a - b);
    return after.length < 2 ? undefined : (after[1]! - at) / 1000;
  }
}

/** Reads who holds a job's coordinator lease, over its own connection to NATS. */
export class LeaseReader {
  private kv: Promise<KvStore> | undefined;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly stores: JetStreamStores,
  ) {}

  static async connect(url: string, cluster: string): Promise<LeaseReader> {
    const nc = await connect({
      servers: url,
      name: "flock-chaos-lease-reader",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    return new LeaseReader(nc, new JetStreamStores(nc, { cluster }));
  }

  /** Node id of the lease holder of `job` (holder strings are `<nodeId>:<incarnation>`), tried 5 times. */
  async holderNode(job: string): Promise<string | undefined> {
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        this.kv ??= openLeaseBucket(this.stores, COORDINATOR_LEASE_MS);
        const lease = await readLease(await this.kv, jobNames.leaseKey(job));
        if (lease) return lease.holder.slice(0, lease.holder.lastIndexOf(":"));
      } catch {
        this.kv = undefined;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    return undefined;
  }

  /** The job's durable state record (the coordinator's, after every committed step); undefined when unreadable. */
  async jobState(job: string): Promise<PersistedJob | undefined> {
    try {
      const entry = await (await this.stores.kv(JOB_STATE_BUCKET)).get(job);
      return entry ? decodeJob(entry.value) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The job's line in the jobs bucket (what `flock status` shows: phase, step, members), as JSON text. */
  async jobRecord(job: string): Promise<string | undefined> {
    try {
      const entry = await (await this.stores.kv(JOBS_BUCKET)).get(job);
      return entry ? new TextDecoder().decode(entry.value) : undefined;
    } catch (e) {
      return `unreadable (${(e as Error).message})`;
    }
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => undefined);
  }
}
