/**
 * The trainer's side of local steps (`sync.every`, local SGD / DiLoCo): a round's samples cut
 * into the H mini-batches of its inner steps, and the inner optimizer whose state lives on the
 * trainer across rounds (as in DiLoCo, where each worker keeps its AdamW state). Pure; the engine
 * computes the gradients.
 * @module
 */
import { createOptimizer, type Optimizer, type OptimizerSpec, type OptimizerState } from "./optimizer.js";

/**
 * The round's samples in `steps` consecutive mini-batches, as equal as possible (the first ones
 * take the remainder, as batch shares do); none empty, so fewer than `steps` when the round has
 * fewer samples.
 */
export function innerBatches(indices: readonly number[], steps: number): number[][] {
  const k = Math.max(1, Math.min(Math.floor(steps), indices.length));
  const base = Math.floor(indices.length / k);
  const extra = indices.length % k;
  const out: number[][] = [];
  let at = 0;
  for (let i = 0; i < k && at < indices.length; i++) {
    const size = base + (i < extra ? 1 : 0);
    out.push(indices.slice(at, at + size));
    at += size;
  }
  return out;
}

/**
 * The inner optimizer of one trainer. Its state carries over from round to round; a round
 * computed again (the same step redone after an abort or a lost member) starts from the state
 * the first computation of that round started from, so a redo moves the optimizer once.
 */
export class InnerOptimizer {
  private optimizer: Optimizer;
  /** The round last started, and the state before it. */
  private last: { round: number; before: OptimizerState } | undefined;

  constructor(private readonly spec: OptimizerSpec) {
    this.optimizer = createOptimizer(spec);
  }

  /** The optimizer to run round `round` with, its state rewound when the round is a redo. */
  forRound(round: number): Optimizer {
    if (this.last?.round === round) {
      this.optimizer = createOptimizer(this.spec);
      this.optimizer.importState(this.last.before);
    } else {
      this.last = { round, before: this.optimizer.exportState() };
    }
    return this.optimizer;
  }
}

/**
 * What a round hands the reducers in place of a gradient sum: `(start − end) · n`, so that the
 * reducers' weighted mean (sum over members, divided by the round's samples) is the average of
 * the members' moves weighted by their samples — DiLoCo's outer gradient. Written into `end`.
 */
export function pseudoGradient(start: Float32Array, end: Float32Array, n: number): Float32Array {
  for (let i = 0; i < end.length; i++) end[i] = (start[i]! - end[i]!) * n;
  return end;
}
