import * as tfc from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import type { Dataset } from "./dataset-core.js";
import type { WeightSpec } from "./quantize.js";
import { mlmEvaluate, mlmTask, type MlmEval } from "./engine-mlm.js";

/**
 * Scores a model as stock tfjs would run it, to compare a compressed export with its float32
 * original: the model is loaded by `tfl.loadLayersModel` from its files' contents, so quantised
 * weights go through tfjs-core's own `io.decodeWeights`, not through flock code. A tfjs backend
 * must be active in this thread (`selectBackend("cpu")`).
 * @module
 */

/** Samples scored per `predict` call: bounds the activations held at once. */
const EVAL_BATCH = 512;

/** Loads a LayersModel from the contents of `model.json` (topology, manifest) and `weights.bin`. */
export async function loadModelFiles(files: {
  modelTopology: object;
  weightSpecs: readonly WeightSpec[];
  weightData: Uint8Array;
}): Promise<tfl.LayersModel> {
  const weightData = new Uint8Array(files.weightData).buffer; // a copy on its own ArrayBuffer
  return tfl.loadLayersModel(
    tfc.io.fromMemory({
      modelTopology: files.modelTopology,
      weightSpecs: files.weightSpecs.map((s) => ({ ...s, shape: [...s.shape] })),
      weightData,
    }),
  );
}

/** The fraction of `dataset`'s test split that `model` classifies right (argmax of its output). */
export function testAccuracy(model: tfl.LayersModel, dataset: Dataset): number {
  const shape = model.inputs[0]?.shape.slice(1).map((d) => d ?? -1) ?? [dataset.inputSize];
  let correct = 0;
  for (let start = 0; start < dataset.testSize; start += EVAL_BATCH) {
    const n = Math.min(EVAL_BATCH, dataset.testSize - start);
    const batch = dataset.testBatch(Array.from({ length: n }, (_, i) => start + i));
    const predicted = tfc.tidy(() => {
      const out = model.predict(tfc.tensor(batch.x, [n, ...shape])) as tfc.Tensor;
      return tfc.argMax(out, 1).dataSync();
    });
    for (let i = 0; i < n; i++) if (predicted[i] === batch.y[i]) correct++;
  }
  return dataset.testSize === 0 ? 0 : correct / dataset.testSize;
}

/**
 * The masked-LM scores (masked-token accuracy, loss, perplexity) of `model` on `dataset`'s test
 * split, masked as its job's evaluation masked it (the job's `seed` and `rate`, the fixed
 * evaluation step): the figures the job reported, so a compressed copy is compared on the very
 * positions its original was scored on.
 */
export function maskedTestScores(
  model: tfl.LayersModel,
  dataset: Dataset,
  mlm: { seed: number; rate: number },
): MlmEval {
  const indices = Array.from({ length: dataset.testSize }, (_, i) => i);
  return mlmEvaluate(tfc, model, dataset, indices, mlmTask(dataset, mlm.seed, mlm.rate));
}
