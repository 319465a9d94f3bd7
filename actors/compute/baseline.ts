import type { DatasetSpec } from "./dataset-spec.js";
import type { BackendName, BackendPreference } from "./backend.js";
import { ComputeEngine } from "./engine.js";
import { paramHash } from "./hash.js";
import type { ModelSpec } from "./models.js";
import { createOptimizer, type OptimizerSpec } from "./optimizer.js";
import { seededPermutation } from "./prng.js";

/** Options of {@link plainTrainLoop}: give `steps` or `epochs` (steps win when both are set). */
export interface PlainTrainOptions {
  model: ModelSpec;
  dataset: DatasetSpec;
  /** Default `auto`. */
  backend?: BackendPreference;
  batchSize: number;
  steps?: number;
  epochs?: number;
  /** Seeds the initial parameters and the batch order; default 0. */
  seed?: number;
  /** Default `{ name: "adam", lr: 1e-3 }`. */
  optimizer?: OptimizerSpec;
}

/** What the plain loop achieved. */
export interface PlainTrainResult {
  /** Training samples per second over the loop (gradients + optimizer + parameter load). */
  samplesPerSec: number;
  /** Test accuracy after the last step. */
  accuracy: number;
  loss: number;
  backend: BackendName;
  device: string;
  steps: number;
  samples: number;
  /** Seconds spent in the training loop (setup and evaluation excluded). */
  trainSeconds: number;
  paramHash: string;
}

/**
 * The one-process reference a benchmark compares flock against: the same engine, gradient and
 * optimizer path as the distributed runtime (sum gradient ÷ n, pure-JS optimizer, parameters
 * loaded back into the model), in a plain loop on the calling thread, with no actors, messages or
 * workers. Each epoch visits the training split in a seeded shuffled order (seed + epoch); a last
 * partial batch is used as is. Blocks the event loop while it runs.
 */
export async function plainTrainLoop(options: PlainTrainOptions): Promise<PlainTrainResult> {
  const seed = options.seed ?? 0;
  const engine = await ComputeEngine.create({
    model: options.model,
    dataset: options.dataset,
    backend: options.backend,
    seed,
  });
  try {
    const { trainSize } = engine.info;
    const batchSize = options.batchSize;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`bad batchSize ${batchSize}`);
    const stepsPerEpoch = Math.ceil(trainSize / batchSize);
    const steps = options.steps ?? (options.epochs ?? 1) * stepsPerEpoch;
    const optimizer = createOptimizer(options.optimizer ?? { name: "adam", lr: 1e-3 });
    const params = engine.initParams(seed);
    engine.setParams(params);

    let samples = 0;
    let order = seededPermutation(trainSize, seed);
    const started = performance.now();
    for (let step = 0; step < steps; step++) {
      const inEpoch = step % stepsPerEpoch;
      if (inEpoch === 0 && step > 0) order = seededPermutation(trainSize, seed + step / stepsPerEpoch);
      const indices = Array.from(order.subarray(inEpoch * batchSize, (inEpoch + 1) * batchSize));
      const { grad, n } = engine.gradients(indices);
      optimizer.step(params, grad, 1 / n);
      engine.setParams(params);
      samples += n;
    }
    const trainSeconds = (performance.now() - started) / 1000;
    const { accuracy, loss } = engine.evaluate();
    return {
      samplesPerSec: samples / trainSeconds,
      accuracy,
      loss,
      backend: engine.info.backend,
      device: engine.info.device,
      steps,
      samples,
      trainSeconds,
      paramHash: paramHash(params),
    };
  } finally {
    engine.dispose();
  }
}
