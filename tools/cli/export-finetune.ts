import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { resolveJobSpec, runJob, saveJobModel, type ClusterHandle } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import {
  readModelDir,
  writeModelFiles,
  type FlockModelInfo,
  type ModelFiles,
} from "../../actors/job/model-export.js";
import type { JobSpec } from "../../actors/job/spec.js";
import type { Logger } from "../../runtime/log.js";

/**
 * The few fine-tuning steps after `flock export --prune`: the pruned float32 model goes to a
 * temporary folder, a job trains from it (`init: file://…`, `keepZeros: true`, so every pruned
 * kernel value stays exactly 0) with the original job's spec otherwise, and its final model is
 * read back to be quantised and written like any other.
 * @module
 */

/** How to fine-tune a pruned model. */
export interface FinetuneOptions {
  /** The spec of the job that trained the model: dataset, model, optimizer, batch, seed. */
  spec: JobSpec;
  /** Epochs of fine-tuning. */
  epochs: number;
  /** Learning rate (default: the original spec's). */
  lr?: number;
  /**
   * The cluster to run on, connected (with the command's auth flags); without it the job runs on
   * the embedded default, as `flock train` does.
   */
  cluster?: ClusterHandle;
  log?: Logger;
}

/** What the fine-tuning job did. */
export interface FinetuneRun {
  job: string;
  epochs: number;
  steps: number;
  lr: number;
  files: ModelFiles;
  info: FlockModelInfo;
}

/** The fine-tuning job's spec: the original's, from the pruned weights, zeros kept, `epochs` long. */
export function finetuneSpec(spec: JobSpec, init: string, epochs: number, lr?: number): JobSpec {
  const { id: _id, ...rest } = spec; // a new job: resolveJobSpec gives it a fresh id
  return resolveJobSpec({
    ...rest,
    name: `${spec.name}-finetune`,
    init,
    keepZeros: true,
    epochs,
    optimizer: { ...spec.optimizer, lr: lr ?? spec.optimizer.lr },
  });
}

/** Trains `pruned` (float32 files, with its `info`) for a few epochs, zeros kept; returns the tuned model. */
export async function finetunePruned(
  pruned: ModelFiles,
  info: FlockModelInfo,
  opts: FinetuneOptions,
): Promise<FinetuneRun> {
  const tmp = mkdtempSync(join(tmpdir(), "flock-prune-"));
  try {
    const from = join(tmp, "pruned");
    writeModelFiles(from, pruned, info);
    const spec = finetuneSpec(opts.spec, pathToFileURL(from).href, opts.epochs, opts.lr);
    const embedded = opts.cluster
      ? undefined
      : await EmbeddedCluster.start({ nodes: spec.maxWorkers, ...(opts.log ? { log: opts.log } : {}) });
    const cluster = opts.cluster ?? embedded!.handle;
    try {
      const result = await runJob(cluster, spec, opts.log ? { log: opts.log } : {});
      if (result.status !== "completed") throw new Error(`fine-tuning job ${spec.id}: ${result.status}`);
      // Every trainer computes the mask from the same saved bytes; a hash mismatch would say otherwise.
      if (!result.replicasConsistent) throw new Error(`fine-tuning job ${spec.id}: replicas diverged`);
      await saveJobModel(cluster, spec, result, join(tmp, "tuned"));
      const tuned = readModelDir(join(tmp, "tuned"));
      return { job: spec.id!, epochs: opts.epochs, steps: result.steps, lr: spec.optimizer.lr, ...tuned };
    } finally {
      await embedded?.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
