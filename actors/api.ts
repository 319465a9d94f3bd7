import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { JobEvent, TrainResult } from "../messages/index.js";
import { ActorSystem, type Behavior } from "../runtime/actor/index.js";
import { openLeaseBucket, readLease } from "../runtime/cluster/lease.js";
import { openJobsBucket, parseJobRecord } from "../runtime/cluster/jobs.js";
import type { StoreProvider } from "../runtime/store/index.js";
import { COORDINATOR_LEASE_MS } from "./coordinator/host.js";
import { addressNode, holderNode } from "./term-guard.js";
import type { Logger } from "../runtime/log.js";
import { silentLogger } from "../runtime/log.js";
import { EXAMPLES, exampleNames } from "./job/examples.js";
import { jobNames } from "./job/names.js";
import { InvalidJobSpecError, parseJobSpec, type JobSpec, type JobSpecInput } from "./job/spec.js";
import { TRAINING_MESSAGES } from "./kinds.js";
import { checkJobFits } from "./job/check.js";

/** The result of a training job (the design's contract, plus evidence): its schema lives with the job events. */
export type { TrainResult };

/** A job that failed (the coordinator reported it, or it could not be placed). */
export class JobFailedError extends Error {
  override name = "JobFailedError";
}

/** Where a job runs: a cluster reached through one client actor system. */
export interface ClusterHandle {
  client: ActorSystem;
  /**
   * The cluster's stores as this client may read them: a job's end is believed only when the
   * job's coordinator lease (or, once it is released, the job's record) backs it.
   */
  stores: StoreProvider;
  /** Nodes alive now, sorted. */
  aliveNodes(): string[];
  /** "embedded (in-process bus)" or the NATS URL. */
  describe: string;
  close(): Promise<void>;
}

/** Options of {@link runJob}. */
export interface RunJobOptions {
  onEvent?: (e: JobEvent) => void;
  log?: Logger;
  /** Give up waiting for nodes after this long (default: the spec's placement timeout). */
  nodeWaitMs?: number;
}

/** Resolves an example name, a job file path or a spec object, applying overrides, and validates it. */
export function resolveJobSpec(
  source: string | JobSpecInput,
  overrides: Partial<JobSpecInput> = {},
): JobSpec {
  let input: JobSpecInput;
  const example =
    typeof source === "string" && Object.hasOwn(EXAMPLES, source) ? EXAMPLES[source] : undefined;
  if (typeof source === "string") {
    if (example) input = structuredClone(example);
    else if (/\.json$/i.test(source)) {
      let text: string;
      try {
        text = readFileSync(source, "utf8");
      } catch (error) {
        throw new InvalidJobSpecError(`cannot read job file ${source}: ${(error as Error).message}`);
      }
      try {
        input = JSON.parse(text) as JobSpecInput;
      } catch (error) {
        throw new InvalidJobSpecError(`job file ${source} is not valid JSON: ${(error as Error).message}`);
      }
    } else
      throw new InvalidJobSpecError(
        `"${source}" is neither an example (${exampleNames().join(", ")}) nor a .json job file`,
      );
  } else input = structuredClone(source);
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const spec = parseJobSpec({ ...input, ...defined });
  return { ...spec, id: spec.id ?? `j${randomUUID().slice(0, 8)}` };
}

/**
 * Submits a job to a cluster and follows it to the end: checks that the model fits the data,
 * places the coordinator on one node and a standby on another, relays the job's events, and
 * resolves with the result.
 */
export async function runJob(
  cluster: ClusterHandle,
  spec: JobSpec,
  opts: RunJobOptions = {},
): Promise<TrainResult> {
  const log = opts.log ?? silentLogger();
  await checkJobFits(spec);
  const job = spec.id!;
  const client = cluster.client;
  client.registry.register(...TRAINING_MESSAGES);
  let settle!: (r: { result?: TrainResult; error?: string }) => void;
  const ended = new Promise<{ result?: TrainResult; error?: string }>((r) => (settle = r));
  let ignoredEnds = 0;
  const follower: Behavior<JobEvent, undefined> = {
    async receive(_s, e, ctx) {
      const terminal = e.type === "job.finished" || e.type === "job.failed";
      // Any member may publish on the job's events topic as itself; only the coordinator's node
      // may end the job. An end that its lease does not back is ignored (and counted).
      if (terminal && !(await speaksForJob(cluster.stores, job, addressNode(ctx.from)))) {
        ignoredEnds++;
        log.warn(
          { job, from: ctx.from, ignored: ignoredEnds },
          `ignored a ${e.type} that the job's coordinator lease does not back`,
        );
        return;
      }
      try {
        opts.onEvent?.(e);
      } catch (error) {
        log.warn({ err: error }, "job event listener threw");
      }
      if (e.type === "job.finished") settle({ result: e.result });
      if (e.type === "job.failed") settle({ error: e.error });
    },
  };
  const ref = client.spawn(follower, { name: `follow-${job}` });
  const off = client.subscribeTopic(jobNames.eventsTopic(job), ref);
  try {
    await client.wire.transport.flush();
    const nodes = await waitForNodes(cluster, 1, opts.nodeWaitMs ?? spec.placementTimeoutMs);
    const name = jobNames.coordinator(job);
    const [active] = nodes;
    if (active === undefined) throw new JobFailedError(`job ${job}: no node to place it on`);
    await client.spawnRemote(active, "flock.coordinator", name, { job, spec }, { timeoutMs: 10_000 });
    // The coordinator keeps a standby on the first other node (sorted) once it runs; this one
    // covers the moments before that.
    const standby = nodes.filter((n) => n !== active).sort()[0];
    if (standby)
      await client
        .spawnRemote(standby, "flock.coordinator", name, { job, spec }, { timeoutMs: 10_000 })
        .catch((e: Error) => log.warn({ err: e }, "no standby coordinator"));
    log.info({ job, active, standby }, "job submitted");
    const outcome = await ended;
    if (outcome.error) throw new JobFailedError(`job ${job} failed: ${outcome.error}`);
    return outcome.result!;
  } finally {
    off();
    await client.stopRemote(ref.address, { timeoutMs: 1000 }).catch(() => undefined);
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

async function waitForNodes(cluster: ClusterHandle, n: number, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const nodes = cluster.aliveNodes();
    if (nodes.length >= n) return nodes;
    if (Date.now() > deadline)
      throw new JobFailedError(
        `no flock node is alive on ${cluster.describe} after ${timeoutMs} ms: start one with \`flock daemon\``,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}
