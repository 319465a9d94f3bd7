import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { TrainResult } from "../messages/index.js";
import type { ActorSystem } from "../runtime/actor/index.js";
import type { StoreProvider } from "../runtime/store/index.js";
import type { Logger } from "../runtime/log.js";
import { JobFailedError, startFollow, type FollowOptions } from "./follow.js";
import { DEFAULT_FOLLOW_TIMINGS } from "./job/follow.js";
import { silentLogger } from "../runtime/log.js";
import { EXAMPLES, exampleNames } from "./job/examples.js";
import { jobNames } from "./job/names.js";
import { InvalidJobSpecError, parseJobSpec, type JobSpec, type JobSpecInput } from "./job/spec.js";
import { TRAINING_MESSAGES } from "./kinds.js";
import { checkJobFits } from "./job/check.js";
import { dataAccess, fetchStoredSources } from "./compute/dataset-store-cache.js";
import { submittedHashes } from "./compute/data-presence.js";
import { resolveDataPaths } from "./compute/dataset-spec.js";
import {
  exportModel,
  fetchJobSpec,
  fetchStoredModel,
  type ExportedModel,
  type ExportOptions,
} from "./job/model-export.js";
import { StoredModelError } from "./job/model-store.js";

export type { ExportedModel, FlockModelInfo } from "./job/model-export.js";

/** The result of a training job (the design's contract, plus evidence): its schema lives with the job events. */
export type { TrainResult };

export {
  JobFailedError,
  UnknownJobError,
  cancelJob,
  followJob,
  lookupJob,
  readJobState,
  speaksForJob,
  type FollowOptions,
  type JobLookup,
} from "./follow.js";

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

/** Options of {@link submitJob}. */
export interface SubmitOptions {
  log?: Logger;
  /** Give up waiting for nodes after this long (default: the spec's placement timeout). */
  nodeWaitMs?: number;
}

/** Options of {@link runJob}: those of the submit and of the follow. */
export interface RunJobOptions extends SubmitOptions, FollowOptions {}

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
      // A dataset file named by a plain path in a job file is relative to the job file.
      if (typeof input === "object" && input !== null)
        input = {
          ...input,
          dataset: resolveDataPaths(input.dataset, dirname(resolve(source))) as JobSpecInput["dataset"],
        };
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
 * Submits a job to a cluster: checks that the model fits the data, places the coordinator on one
 * node and a standby on another, and returns the job id at once. {@link followJob} follows it.
 */
export async function submitJob(
  cluster: ClusterHandle,
  spec: JobSpec,
  opts: SubmitOptions = {},
): Promise<string> {
  const log = opts.log ?? silentLogger();
  // The checked spec: a streamed dataset's carries its profile (`withStreamProfile`).
  const checked = await checkJobFits(spec, cluster.stores);
  // The hashes of the file:// data as this machine holds it: the reference every node's copy
  // must match to get a trainer (`coordinator/data-checks.ts`).
  const hashes = await submittedHashes(spec.dataset);
  const placed: JobSpec = Object.keys(hashes).length > 0 ? { ...checked, dataHashes: hashes } : checked;
  const job = spec.id!;
  const client = cluster.client;
  client.registry.register(...TRAINING_MESSAGES);
  const nodes = await waitForNodes(cluster, 1, opts.nodeWaitMs ?? spec.placementTimeoutMs);
  const name = jobNames.coordinator(job);
  const [active] = nodes;
  if (active === undefined) throw new JobFailedError(`job ${job}: no node to place it on`);
  await client.spawnRemote(active, "flock.coordinator", name, { job, spec: placed }, { timeoutMs: 10_000 });
  // The coordinator keeps a standby on the first other node (sorted) once it runs; this one
  // covers the moments before that.
  const standby = nodes.filter((n) => n !== active).sort()[0];
  if (standby)
    await client
      .spawnRemote(standby, "flock.coordinator", name, { job, spec: placed }, { timeoutMs: 10_000 })
      .catch((e: Error) => log.warn({ err: e }, "no standby coordinator"));
  log.info({ job, active, standby }, "job submitted");
  return job;
}

/**
 * Submits a job and follows it to the end ({@link submitJob}, then {@link followJob}, subscribed
 * before the submit so no early event is missed); resolves with the result.
 */
export async function runJob(
  cluster: ClusterHandle,
  spec: JobSpec,
  opts: RunJobOptions = {},
): Promise<TrainResult> {
  const nodeWaitMs = opts.nodeWaitMs ?? spec.placementTimeoutMs;
  const follow = await startFollow(cluster, spec.id!, {
    ...opts,
    // The job shows (its lease, record or events) only once a node takes it: allow for the wait.
    timings: { appearWithinMs: nodeWaitMs + DEFAULT_FOLLOW_TIMINGS.appearWithinMs, ...opts.timings },
  });
  try {
    await submitJob(cluster, spec, { ...opts, nodeWaitMs });
    return await follow.result();
  } finally {
    await follow.stop();
  }
}

/**
 * Writes a completed job's final model to `dir` (`model.json` + `weights.bin`, the tfjs
 * LayersModel format, and `flock.json`): the model its evaluator scored last, kept in the
 * cluster's object store under the job's id. Throws when the job did not complete or the stored
 * model is not the final step's (`StoredModelError`). `opts.quantize` stores the weights quantised.
 */
export async function saveJobModel(
  cluster: ClusterHandle,
  spec: JobSpec,
  result: TrainResult,
  dir: string,
  opts: ExportOptions = {},
): Promise<ExportedModel> {
  if (result.status !== "completed")
    throw new JobFailedError(`job ${spec.id}: ${result.status}, so there is no final model to write`);
  const stored = await fetchStoredModel(cluster.stores, spec.id!);
  if (stored.step !== result.steps)
    throw new StoredModelError(
      `job ${spec.id}: the stored model is of step ${stored.step}, the job ended at ${result.steps}`,
    );
  // The spec as placed: a streamed dataset's profile is the one its trainers featurized with
  // (computing it again would read every shard twice more, and see the dataset as it is now).
  const placed = await fetchJobSpec(cluster.stores, spec.id!);
  const data = await fetchStoredSources(placed.dataset, dataAccess(cluster.stores));
  return exportModel(placed, stored, dir, { ...opts, data });
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
