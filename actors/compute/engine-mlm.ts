/**
 * The engine's masked-LM task (`task: "mlm"`): the training loss of a batch masked for a step, and
 * the evaluation of the test split masked once. Masks come from `maskTokens` (seeded by the job
 * seed, the step and each row's ids), so a step redone on another trainer, or a batch split
 * differently over trainers, masks every sample alike.
 *
 * Loss normalisation. The reducers divide the summed gradients by the step's SAMPLES (`n`, what
 * the ledger counts), so the loss a trainer sums must be a sum of per-sample terms. A sample's term
 * is its row's mean cross-entropy over its masked positions (`rowMeanScale`: each masked position
 * weighs `1 / count_row`); the optimizer then follows the mean over samples of the per-row mean.
 * Dividing by the batch's masked count instead would make a trainer's sum depend on which other
 * rows it holds, and two trainers' sums would no longer add up to the one-trainer sum. A row with no
 * ordinary token (an empty text) is a sample with loss 0. Evaluation reports the token-weighted
 * mean (Σ losses / Σ masked positions), BERT's, whose exp is the perplexity.
 * @module
 */
import type * as tfc from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import type { Tf } from "./backend.js";
import type { Batch, Dataset } from "./dataset-core.js";
import { applyModel } from "./models.js";
import {
  maskTokens,
  maskedAccuracy,
  maskedLmLoss,
  perplexity,
  rowMeanScale,
  type MaskedBatch,
} from "./transformer/mlm.js";

/** What masking needs: the job seed and rate, and the dataset's token sizes. */
export interface MlmTask {
  seed: number;
  rate: number;
  maxLen: number;
  vocabulary: number;
}

/** The step the test split is masked for: fixed, so every evaluation scores the same positions. */
export const EVAL_MASK_STEP = 0;
/** Most logits (`rows × maxLen × vocabulary`) an evaluation chunk computes at once (64 MB of float32). */
const EVAL_LOGITS = 1 << 24;

/** The masked-LM task of an engine; throws when the dataset holds no token ids. */
export function mlmTask(dataset: Pick<Dataset, "name" | "tokens">, seed: number, rate: number): MlmTask {
  const tokens = dataset.tokens;
  if (!tokens) throw new Error(`task mlm needs token ids: dataset "${dataset.name}" has no tokenizer`);
  return { seed, rate, maxLen: tokens.maxLen, vocabulary: tokens.vocabulary };
}

/** A batch of ids masked for `step`. */
export function maskBatch(batch: Batch, task: MlmTask, step: number): MaskedBatch {
  // Ids arrive as float32 (exact integers below 2^24); maskTokens reads them as int32.
  return maskTokens(Int32Array.from(batch.x), {
    seed: task.seed,
    step,
    vocabSize: task.vocabulary,
    rate: task.rate,
    maxLen: task.maxLen,
  });
}

/**
 * The summed per-row masked loss of a training batch for `step` (see the module comment), as a
 * function for `tf.variableGrads`. Call inside `tf.tidy`.
 */
export function mlmTrainLoss(
  tf: Tf,
  model: LayersModel,
  batch: Batch,
  task: MlmTask,
  step: number,
): () => tfc.Scalar {
  const masked = maskBatch(batch, task, step);
  const x = tf.tensor2d(Float32Array.from(masked.input), [batch.n, task.maxLen]);
  const scale = rowMeanScale(masked.targets, task.maxLen);
  return () => maskedLmLoss(tf, applyModel(model, x, true), masked.targets, scale).lossSum;
}

/** Scores of the test split masked for {@link EVAL_MASK_STEP}. */
export interface MlmEval {
  /** Mean cross-entropy over the masked positions (token-weighted). */
  loss: number;
  /** Masked-token accuracy. */
  accuracy: number;
  perplexity: number;
  /** Rows scored. */
  n: number;
  /** Masked positions scored. */
  maskedTokens: number;
}

/** Masked loss, accuracy and perplexity of the given test rows, in chunks that bound the logits' memory. */
export function mlmEvaluate(
  tf: Tf,
  model: LayersModel,
  dataset: Pick<Dataset, "testBatch">,
  indices: readonly number[],
  task: MlmTask,
): MlmEval {
  const chunk = Math.max(1, Math.floor(EVAL_LOGITS / (task.maxLen * task.vocabulary)));
  let lossSum = 0;
  let correct = 0;
  let count = 0;
  for (let start = 0; start < indices.length; start += chunk) {
    const batch = dataset.testBatch(indices.slice(start, start + chunk));
    const masked = maskBatch(batch, task, EVAL_MASK_STEP);
    const [loss, hits] = tf.tidy(() => {
      const logits = applyModel(
        model,
        tf.tensor2d(Float32Array.from(masked.input), [batch.n, task.maxLen]),
        false,
      );
      const acc = maskedAccuracy(tf, logits, masked.targets);
      return [maskedLmLoss(tf, logits, masked.targets).lossSum.dataSync()[0] ?? NaN, acc.correct];
    });
    lossSum += loss;
    correct += hits;
    count += masked.count;
  }
  return {
    loss: count === 0 ? 0 : lossSum / count,
    accuracy: count === 0 ? 0 : correct / count,
    perplexity: perplexity(lossSum, count),
    n: indices.length,
    maskedTokens: count,
  };
}
