import { resolveJobSpec } from "../../actors/api.js";
import type { PlainTrainOptions } from "../../actors/compute/baseline.js";
import type { LayersModelConfig } from "../../actors/compute/models.js";
import { dense } from "../../actors/compute/model-zoo.js";
import type { JobSpecInput } from "../../actors/job/spec.js";

/** The models the training figures measure: `mnist` (the example's 784→128→10) and `heavy`. */
export type Workload = "mnist" | "heavy";

/** The job example every training figure starts from. */
export const EXAMPLE = "mnist";

/**
 * The heavy workload's model, sent in the job spec as a layers config: 784 → 512 relu → 512 relu →
 * 10 (669,706 parameters, a 2.7 MB gradient). Measured with the plain loop on this 2-core machine
 * (wasm backend, batch 64): 784→128→10 steps in ~10 ms, 784→256²→10 ~2.2× that, 784→512²→10
 * ≥ 50 ms; 784→1024²→10 took ~0.9 s a step under load, too slow for a bench. A conv model would be
 * the natural choice, but wasm has no Conv2DBackpropFilter (see model-zoo.ts).
 */
export const HEAVY_MODEL: LayersModelConfig = {
  class_name: "Sequential",
  config: {
    name: "mnist-wide",
    layers: [
      dense("hidden1", 512, "relu", 784),
      dense("hidden2", 512, "relu"),
      dense("logits", 10, "linear"),
    ],
  },
};

/**
 * Job spec overrides of a workload. The heavy job evaluates only at its end: one evaluation of
 * the test split on this model costs about as much as several steps, and its figure is about the
 * step's compute against its communication.
 */
export function workloadOverrides(workload: Workload): Partial<JobSpecInput> {
  return workload === "heavy" ? { name: "mnist-wide", model: HEAVY_MODEL, evalEvery: 1000 } : {};
}

/** Options of the plain tfjs loop for a workload, with the one-worker job's batch. */
export function loopOptions(workload: Workload, steps: number): PlainTrainOptions {
  const base = resolveJobSpec(EXAMPLE, workloadOverrides(workload));
  return {
    model: base.model,
    dataset: base.dataset,
    backend: base.backend,
    batchSize: base.globalBatch,
    seed: base.seed,
    optimizer: base.optimizer,
    steps,
  };
}
