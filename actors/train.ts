import type { JobEvent } from "../messages/index.js";
import type { Logger } from "../runtime/log.js";
import { resolveJobSpec, runJob, type ClusterHandle, type TrainResult } from "./api.js";
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
}

/**
 * Trains a job and resolves with its result: an example name (`mnist`, `spam`), a JSON job file,
 * or a spec object. Runs on a cluster when `nats` is given, else on the embedded default.
 */
export async function train(spec: string | JobSpecInput, opts: TrainOptions = {}): Promise<TrainResult> {
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
    return await runJob(cluster, job, {
      log: opts.log,
      onEvent: (e) => {
        opts.onEvent?.(e);
        if (e.type === "job.step") opts.onProgress?.(e);
      },
    });
  } finally {
    await cluster.close();
  }
}
