import type { JobEvent } from "../messages/index.js";
import type { Logger } from "../runtime/log.js";
import {
  resolveJobSpec,
  runJob,
  saveJobModel,
  type ClusterHandle,
  type ExportedModel,
  type TrainResult,
} from "./api.js";
import { EmbeddedCluster } from "./embedded.js";
import type { JobSpecInput } from "./job/spec.js";
import { connectCluster } from "./remote.js";

/** Options of {@link train}. */
export interface TrainOptions {
  /** NATS URL(s) of a cluster of `flock daemon`s; without it the job runs on the embedded default. */
  nats?: string;
  cluster?: string;
  /** Embedded default: how many nodes (default: the spec's maxWorkers). */
  nodes?: number;
  /** Overrides of the spec (epochs, minWorkers, maxWorkers, seed, ...). */
  overrides?: Partial<JobSpecInput>;
  /** Every job event: steps, evaluations, membership changes, hash checks. */
  onEvent?: (e: JobEvent) => void;
  /** Step progress only (a convenience over `onEvent`). */
  onProgress?: (p: Extract<JobEvent, { type: "job.step" }>) => void;
  log?: Logger;
  /** Write the final model here (`model.json`, `weights.bin`, `flock.json`); see {@link saveJobModel}. */
  out?: string;
}

/** The result of {@link train}; `model` says where the model went when `out` was given. */
export type TrainOutcome = TrainResult & { model?: ExportedModel };

/**
 * Trains a job and resolves with its result: an example name (`mnist`, `spam`), a JSON job file,
 * or a spec object. Runs on a cluster when `nats` is given, else on the embedded default.
 */
export async function train(spec: string | JobSpecInput, opts: TrainOptions = {}): Promise<TrainOutcome> {
  const job = resolveJobSpec(spec, opts.overrides);
  let cluster: ClusterHandle;
  if (opts.nats) cluster = await connectCluster({ servers: opts.nats, cluster: opts.cluster, log: opts.log });
  else
    cluster = (
      await EmbeddedCluster.start({
        nodes: opts.nodes ?? job.maxWorkers,
        cluster: opts.cluster,
        log: opts.log,
      })
    ).handle;
  try {
    const result = await runJob(cluster, job, {
      log: opts.log,
      onEvent: (e) => {
        opts.onEvent?.(e);
        if (e.type === "job.step") opts.onProgress?.(e);
      },
    });
    if (opts.out === undefined || result.status !== "completed") return result;
    return { ...result, model: await saveJobModel(cluster, job, result, opts.out) };
  } finally {
    await cluster.close();
  }
}
