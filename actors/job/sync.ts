/**
 * What the sync options of a job spec (`sync.every`, `sync.outer`) mean for the parts that
 * size a step and apply its update: one place, so the coordinator, the trainers and the reducers
 * cannot disagree.
 * @module
 */
import type { OptimizerSpec } from "../compute/optimizer.js";
import type { JobSpec } from "./spec.js";

/** DiLoCo's outer optimizer defaults (Douillard et al. 2023: Nesterov, lr 0.7, momentum 0.9). */
export const OUTER_DEFAULTS = { lr: 0.7, momentum: 0.9 } as const;

/** Local optimizer steps per committed step (1: synchronous data parallel). */
export function localSteps(spec: Pick<JobSpec, "sync">): number {
  return spec.sync.every;
}

/** Samples of one committed step over all members: `globalBatch`, times H with local steps. */
export function roundSamples(spec: Pick<JobSpec, "sync" | "globalBatch">): number {
  return spec.globalBatch * localSteps(spec);
}

/**
 * The optimizer the reducers apply to the averaged update: the job's own optimizer, or with
 * local steps the outer Nesterov SGD over the pseudo-gradient (the job's optimizer then runs on
 * the trainers, inside each round).
 */
export function reducerOptimizer(spec: Pick<JobSpec, "sync" | "optimizer">): OptimizerSpec {
  if (localSteps(spec) === 1) return spec.optimizer;
  const outer = spec.sync.outer ?? OUTER_DEFAULTS;
  return { name: "sgd", lr: outer.lr, momentum: outer.momentum, nesterov: true };
}
