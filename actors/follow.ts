/**
 * Following a job from a client: the live events of its topic, and its durable state record when
 * the topic falls silent (see `job/follow.ts` for the decisions). Also looking a job up and
 * cancelling it. Every read goes through the client's {@link StoreProvider}, as the submitter role
 * may read it (tools/auth/permissions.ts).
 * @module
 */
import { randomUUID } from "node:crypto";
import type { JobEvent, TrainResult } from "../messages/index.js";
import type { Behavior } from "../runtime/actor/index.js";
import { systemScheduler, type Scheduler } from "../runtime/clock.js";
import { openJobsBucket, parseJobRecord, type JobRecord } from "../runtime/cluster/jobs.js";
import { openLeaseBucket, readLease } from "../runtime/cluster/lease.js";
import { silentLogger, type Logger } from "../runtime/log.js";
import type { StoreProvider } from "../runtime/store/index.js";
import type { ClusterHandle } from "./api.js";
import { decodeJob } from "./coordinator/codec.js";
import { COORDINATOR_LEASE_MS } from "./coordinator/host.js";
import type { CoordinatorCommand } from "./coordinator/protocol.js";
import {
  DEFAULT_FOLLOW_TIMINGS,
  followLoop,
  type FollowEnd,
  type FollowTimings,
  type RecordRead,
} from "./job/follow.js";
import { JOB_STATE_BUCKET, jobNames } from "./job/names.js";
import { TRAINING_MESSAGES } from "./kinds.js";
import { addressNode, holderNode } from "./term-guard.js";

/** A job that failed (the coordinator reported it, or it could not be placed). */
export class JobFailedError extends Error {
  override name = "JobFailedError";
}

/** A job id that nothing in the cluster knows: no state record, no job line, no coordinator. */
export class UnknownJobError extends Error {
  override name = "UnknownJobError";
}

/** Options of {@link followJob}. */
export interface FollowOptions {
  onEvent?: (e: JobEvent) => void;
  log?: Logger;
  /** Timers of the follow (default {@link systemScheduler}). */
  scheduler?: Scheduler;
  /** Overrides of {@link DEFAULT_FOLLOW_TIMINGS}. */
  timings?: Partial<FollowTimings>;
}

/** A follow in progress: subscribed to the job's events and reading its record after silences. */
export interface Follow {
  /** The end, as it came (live event or record). */
  end(): Promise<FollowEnd>;
  /** The result; rejects with {@link JobFailedError} or {@link UnknownJobError}. */
  result(): Promise<TrainResult>;
  /** Unsubscribes and stops the follower actor (idempotent). */
  stop(): Promise<void>;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The holder node of the job's coordinator lease, or undefined when nobody holds it. Throws when unreadable. */
export async function coordinatorNode(stores: StoreProvider, job: string): Promise<string | undefined> {
  const lease = await readLease(await openLeaseBucket(stores, COORDINATOR_LEASE_MS), jobNames.leaseKey(job));
  return lease && holderNode(lease.holder);
}

/** One read of the job's durable state record; never rejects (a store failure is `unreachable`). */
export async function readJobState(stores: StoreProvider, job: string): Promise<RecordRead> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = (await (await stores.kv(JOB_STATE_BUCKET)).get(job))?.value;
    if (!bytes) return { kind: "absent", leased: (await coordinatorNode(stores, job)) !== undefined };
  } catch (error) {
    return { kind: "unreachable", why: message(error) };
  }
  try {
    const p = decodeJob(bytes);
    if (p.state === "running") return { kind: "running", step: p.step };
    if (p.state === "failed") return { kind: "failed", error: p.error ?? "job failed" };
    // The coordinator sets the result before it persists the end; a record without one is not an end.
    return p.result
      ? { kind: "finished", result: p.result }
      : { kind: "unreadable", why: "finished without a result" };
  } catch (error) {
    return { kind: "unreadable", why: message(error) };
  }
}

/** What the cluster knows of a job, for the CLI's checks before it follows or cancels. */
export interface JobLookup {
  state: RecordRead;
  line?: JobRecord;
  /** The node holding the job's coordinator lease. */
  coordinator?: string;
}

/** Looks a job up; rejects with {@link UnknownJobError} when nothing knows it, or the store's error. */
export async function lookupJob(stores: StoreProvider, job: string): Promise<JobLookup> {
  const state = await readJobState(stores, job);
  if (state.kind === "unreachable") throw new Error(`cannot read job ${job}'s state: ${state.why}`);
  const entry = await (await openJobsBucket(stores)).get(job);
  const line = entry && parseJobRecord(entry.value);
  const coordinator = await coordinatorNode(stores, job);
  if (state.kind === "absent" && !line && coordinator === undefined)
    throw new UnknownJobError(`unknown job "${job}": no state record, no job record and no coordinator`);
  return { state, line, coordinator };
}

/**
 * Starts following `job`: relays its live events (an end only when the job's lease backs it, see
 * {@link speaksForJob}), reads its state record after a silence and after the client reconnects,
 * and ends with the first backed end from either.
 */
export async function startFollow(
  cluster: ClusterHandle,
  job: string,
  opts: FollowOptions = {},
): Promise<Follow> {
  const log = opts.log ?? silentLogger();
  const client = cluster.client;
  client.registry.register(...TRAINING_MESSAGES);
  const loop = followLoop({
    job,
    scheduler: opts.scheduler ?? systemScheduler,
    timings: { ...DEFAULT_FOLLOW_TIMINGS, ...opts.timings },
    read: () => readJobState(cluster.stores, job),
    onFailedRead: (read, n) => {
      if (n === 1 || n % 20 === 0)
        log.warn({ job, read, failedReads: n }, "cannot read the job's state record yet; still following");
    },
  });
  let ignoredEnds = 0;
  const follower: Behavior<JobEvent, undefined> = {
    async receive(_s, e, ctx) {
      loop.heard();
      const terminal = e.type === "job.finished" || e.type === "job.failed";
      // Any member may publish on the job's events topic as itself; only the coordinator's node
      // may end the job. An end that its lease does not back is ignored (and counted), and the
      // record read soon: the real end may have been lost.
      if (terminal && !(await speaksForJob(cluster.stores, job, addressNode(ctx.from)))) {
        ignoredEnds++;
        log.warn(
          { job, from: ctx.from, ignored: ignoredEnds },
          `ignored a ${e.type} that the job's lease does not back`,
        );
        return loop.readNow();
      }
      try {
        opts.onEvent?.(e);
      } catch (error) {
        log.warn({ err: error }, "job event listener threw");
      }
      if (e.type === "job.finished") loop.ended({ kind: "finished", result: e.result, via: "event" });
      if (e.type === "job.failed") loop.ended({ kind: "failed", error: e.error, via: "event" });
    },
  };
  const ref = client.spawn(follower, { name: `follow-${job}-${randomUUID().slice(0, 8)}` });
  const off = client.subscribeTopic(jobNames.eventsTopic(job), ref);
  // nats.js resubscribes after a reconnect, but what was published meanwhile is gone: read the record.
  const offStatus = client.wire.transport.onStatus((s) => {
    if (s.kind === "reconnected") loop.readNow();
    if (s.kind === "closed")
      loop.ended({ kind: "lost", error: `the connection to ${cluster.describe} closed` });
  });
  await client.wire.transport.flush();
  let stopped = false;
  return {
    end: () => loop.done,
    result: () => loop.done.then((end) => resultOf(job, end)),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      loop.stop();
      off();
      offStatus();
      await client.stopRemote(ref.address, { timeoutMs: 1000 }).catch(() => undefined);
    },
  };
}

function resultOf(job: string, end: FollowEnd): TrainResult {
  switch (end.kind) {
    case "finished":
      return end.result;
    case "failed":
      throw new JobFailedError(`job ${job} failed: ${end.error}`);
    case "unknown":
      throw new UnknownJobError(end.error);
    case "lost":
      throw new Error(`job ${job}: ${end.error} before the job ended`);
  }
}

/** Follows an existing job to its end (the client that submitted it may be gone); resolves with its result. */
export async function followJob(
  cluster: ClusterHandle,
  job: string,
  opts: FollowOptions = {},
): Promise<TrainResult> {
  const follow = await startFollow(cluster, job, opts);
  try {
    return await follow.result();
  } finally {
    await follow.stop();
  }
}

/** Options of {@link cancelJob}. */
export interface CancelOptions extends FollowOptions {
  /** Give up when the job has not ended this long after the first cancel (default 30 s). */
  timeoutMs?: number;
}

/** Pause between cancels sent to the lease holder (a failover may move the coordinator meanwhile). */
const CANCEL_RESEND_MS = 2000;

/**
 * Cancels a running job: tells its coordinator (on the node holding the job's lease) to fail it
 * with "cancelled by <this client's id>", again every few seconds until the job ends, and resolves
 * with how it ended (a job that finished first ends as finished).
 */
export async function cancelJob(
  cluster: ClusterHandle,
  job: string,
  opts: CancelOptions = {},
): Promise<FollowEnd> {
  const scheduler = opts.scheduler ?? systemScheduler;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const follow = await startFollow(cluster, job, {
    ...opts,
    timings: { silenceMs: 500, pollMs: 500, ...opts.timings },
  });
  const cancel: CoordinatorCommand = { type: "coord.cancel", by: cluster.client.nodeId };
  try {
    const end = follow.end();
    const deadline = scheduler.now() + timeoutMs;
    while (scheduler.now() < deadline) {
      const node = await coordinatorNode(cluster.stores, job).catch(() => undefined);
      if (node !== undefined)
        cluster.client.ref<CoordinatorCommand>(`${node}/${jobNames.coordinator(job)}`).tell(cancel);
      const got = await Promise.race([end, scheduler.sleep(CANCEL_RESEND_MS).then(() => undefined)]);
      if (got) return got;
    }
    throw new JobFailedError(
      `job ${job} did not end within ${timeoutMs} ms of the cancel (is its coordinator running?)`,
    );
  } finally {
    await follow.stop();
  }
}

/** Reads of the lease and the record before an unbacked end is ignored, and the pause between them. */
const END_CHECKS = 20;
const END_CHECK_PAUSE_MS = 100;

/**
 * Whether a job's end announced by `node` is backed: `node` holds the job's coordinator lease, or
 * nobody does and the job's record says the job ended (the coordinator persists its record, then
 * resigns). Read again a few times before giving up: the announcement can arrive before the record
 * is written and after the lease is released. A store that cannot be read backs nothing.
 */
export async function speaksForJob(
  stores: StoreProvider,
  job: string,
  node: string | undefined,
  checks = END_CHECKS,
  pauseMs = END_CHECK_PAUSE_MS,
): Promise<boolean> {
  if (node === undefined) return false;
  for (let i = 0; i < checks; i++) {
    try {
      const lease = await readLease(
        await openLeaseBucket(stores, COORDINATOR_LEASE_MS),
        jobNames.leaseKey(job),
      );
      if (lease) {
        // Held by another node: a forgery (or a stale end), refused at once, so a stream of
        // them cannot back up the follower's mailbox behind two-second checks.
        return holderNode(lease.holder) === node;
      } else {
        const entry = await (await openJobsBucket(stores)).get(job);
        const state = entry && parseJobRecord(entry.value)?.state;
        if (state === "finished" || state === "failed") return true;
      }
    } catch {
      // Unreadable for now: try again.
    }
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  return false;
}
