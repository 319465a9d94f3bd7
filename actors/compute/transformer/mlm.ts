/**
 * Masked language modelling, the pure parts: BERT's token masking (deterministic per seed, step and
 * row content) and the masked-LM loss, accuracy and perplexity over the masked positions only.
 * @module
 */
import type * as tfc from "@tensorflow/tfjs-core";
import type { Tf } from "../backend.js";
import { createPrng, hash32 } from "../prng.js";
import { MASK_ID, PAD_ID, SPECIAL_TOKENS } from "../tokenizer.js";

/** The target at a position that is not predicted. */
export const NOT_MASKED = -1;

/** The first id of an ordinary (non-special) token: ids 0-4 are `[PAD] [UNK] [CLS] [SEP] [MASK]`. */
const FIRST_ORDINARY_ID = SPECIAL_TOKENS.length;

/** What `maskTokens` needs besides the ids. */
export interface MaskOptions {
  /** The job's seed. */
  seed: number;
  /** The training step: a new step masks the same example differently (BERT's dynamic masking). */
  step: number;
  /** The vocabulary size; random replacements are drawn from its ordinary ids `[5, vocabSize)`. */
  vocabSize: number;
  /** Fraction of a row's candidate positions that are predicted (BERT: 0.15). */
  rate?: number;
  /** Row length: `ids` holds `ids.length / maxLen` rows, each masked on its own. */
  maxLen: number;
}

/** A masked batch. */
export interface MaskedBatch {
  /** The model input: the ids with the chosen positions replaced (80 %), randomised (10 %) or kept (10 %). */
  input: Int32Array;
  /** The original id at each chosen position, {@link NOT_MASKED} elsewhere. */
  targets: Int32Array;
  /** 1 at each chosen position, 0 elsewhere. */
  weights: Float32Array;
  /** Number of chosen positions. */
  count: number;
}

/**
 * Whether a position may be chosen. Every special id is excluded: `[PAD]`, `[CLS]` and `[SEP]` carry
 * no text, `[MASK]` never occurs in a tokenizer's output, and `[UNK]` is excluded because learning to
 * predict "unknown" teaches nothing about the text.
 */
function isCandidate(id: number): boolean {
  return id >= FIRST_ORDINARY_ID;
}

/** A 32-bit hash of a row's ids, so a row masks the same wherever it sits in a batch. */
function rowHash(ids: Int32Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = hash32(h ^ Math.imul((ids[i] ?? 0) + 1, 0x9e3779b1));
  return h;
}

/**
 * BERT's masking (create_pretraining_data.py): of a row's `n` candidate positions, exactly
 * `max(1, round(rate · n))` are chosen (a seeded shuffle of the candidates), so every row with a real
 * token predicts at least one; each chosen position is replaced by `[MASK]` with probability 0.8, by a
 * uniformly random ordinary token with 0.1 (which may be the original, as in BERT), and kept with 0.1.
 * The choice depends only on (`seed`, `step`, the row's ids): data-parallel workers that split a batch
 * differently still mask each example alike. Never uses Math.random.
 */
export function maskTokens(ids: Int32Array, options: MaskOptions): MaskedBatch {
  const { seed, step, vocabSize, rate = 0.15, maxLen } = options;
  if (!Number.isInteger(maxLen) || maxLen < 1 || ids.length % maxLen !== 0) {
    throw new RangeError(`mlm: ${ids.length} ids are not rows of ${maxLen}`);
  }
  if (!Number.isInteger(vocabSize) || vocabSize <= FIRST_ORDINARY_ID) {
    throw new RangeError(`mlm: vocabulary of ${vocabSize} has no ordinary token`);
  }
  if (!(rate > 0 && rate <= 1)) throw new RangeError(`mlm: rate ${rate} is not in (0, 1]`);
  const input = Int32Array.from(ids);
  const targets = new Int32Array(ids.length).fill(NOT_MASKED);
  const weights = new Float32Array(ids.length);
  let count = 0;
  const stepSeed = hash32(hash32(seed >>> 0) ^ hash32((step >>> 0) + 0x632be5ab));
  for (let start = 0; start < ids.length; start += maxLen) {
    const candidates: number[] = [];
    for (let i = start; i < start + maxLen; i++) if (isCandidate(ids[i] ?? PAD_ID)) candidates.push(i);
    if (candidates.length === 0) continue;
    const rng = createPrng(hash32(stepSeed ^ rowHash(ids, start, start + maxLen)));
    const k = Math.max(1, Math.round(rate * candidates.length));
    // A partial Fisher–Yates shuffle: its first k entries are a uniform k-subset.
    for (let j = 0; j < k; j++) {
      const r = j + rng.nextInt(candidates.length - j);
      const pos = candidates[r]!; // j ≤ r < candidates.length
      candidates[r] = candidates[j]!;
      candidates[j] = pos;
      const original = ids[pos]!; // a candidate position is inside ids
      targets[pos] = original;
      weights[pos] = 1;
      const u = rng.next();
      if (u < 0.8) input[pos] = MASK_ID;
      else if (u < 0.9) input[pos] = FIRST_ORDINARY_ID + rng.nextInt(vocabSize - FIRST_ORDINARY_ID);
    }
    count += k;
  }
  return { input, targets, weights, count };
}

/** Summed masked-LM loss and the positions it sums over. */
export interface MaskedLoss {
  /** Σ over masked positions of −log softmax(logits)[target]. */
  lossSum: tfc.Scalar;
  /** Number of masked positions (targets ≠ {@link NOT_MASKED}). */
  count: number;
}

/** The logits' `[positions, vocabulary]` view, checked against the targets. */
function flatLogits(tf: Tf, logits: tfc.Tensor, targets: Int32Array): tfc.Tensor2D {
  const vocabulary = logits.shape[logits.rank - 1] ?? 0;
  const positions = vocabulary === 0 ? 0 : logits.size / vocabulary;
  if (logits.rank < 2 || positions !== targets.length) {
    throw new RangeError(`mlm: logits [${logits.shape.join(", ")}] do not match ${targets.length} targets`);
  }
  for (const t of targets) {
    if (t !== NOT_MASKED && !(t >= 0 && t < vocabulary))
      throw new RangeError(`mlm: target ${t} out of range`);
  }
  return tf.reshape(logits, [positions, vocabulary]);
}

/**
 * Softmax cross-entropy of `logits` (`[batch, len, vocabulary]`) summed over the masked positions.
 * Built from oneHot × logSoftmax and a 0/1 position mask, like the engine's `lossSum`: a gather would
 * be cheaper, but tfjs's gather gradient needs UnsortedSegmentSum, which the wasm backend lacks.
 * With `scale`, each masked position's loss is multiplied by `scale[i]` (see {@link rowMeanScale}).
 */
export function maskedLmLoss(
  tf: Tf,
  logits: tfc.Tensor,
  targets: Int32Array,
  scale?: Float32Array,
): MaskedLoss {
  const flat = flatLogits(tf, logits, targets);
  const vocabulary = flat.shape[1];
  const mask = new Float32Array(targets.length);
  const index = new Int32Array(targets.length);
  let count = 0;
  targets.forEach((t, i) => {
    if (t === NOT_MASKED) return;
    mask[i] = scale?.[i] ?? 1;
    index[i] = t;
    count++;
  });
  const lossSum = tf.tidy(() => {
    const picked = tf.sum(
      tf.mul(tf.oneHot(tf.tensor1d(index, "int32"), vocabulary), tf.logSoftmax(flat)),
      -1,
    );
    return tf.neg(tf.sum<tfc.Scalar>(tf.mul(picked, tf.tensor1d(mask))));
  });
  return { lossSum, count };
}

/**
 * Per-position loss scales that make a row's masked loss its MEAN over its masked positions
 * (`1 / count_row` at each of them, 0 elsewhere): summed over rows, the batch loss is then a sum of
 * per-sample terms, like a classifier's, so any split of a batch over trainers adds up to the same
 * sum and the reducers' division by the samples gives the mean per-row masked cross-entropy.
 */
export function rowMeanScale(targets: Int32Array, maxLen: number): Float32Array {
  const scale = new Float32Array(targets.length);
  for (let start = 0; start < targets.length; start += maxLen) {
    let count = 0;
    for (let i = start; i < start + maxLen; i++) if (targets[i] !== NOT_MASKED) count++;
    for (let i = start; i < start + maxLen; i++) if (targets[i] !== NOT_MASKED) scale[i] = 1 / count;
  }
  return scale;
}

/** Masked-token accuracy: how many masked positions the logits' argmax predicts. */
export interface MaskedAccuracy {
  correct: number;
  count: number;
  /** `correct / count`; 0 when nothing is masked. */
  accuracy: number;
}

/** Counts the masked positions whose argmax over the vocabulary is the target (reads the logits). */
export function maskedAccuracy(tf: Tf, logits: tfc.Tensor, targets: Int32Array): MaskedAccuracy {
  const predicted = tf.tidy(() => tf.argMax(flatLogits(tf, logits, targets), -1).dataSync());
  let correct = 0;
  let count = 0;
  targets.forEach((t, i) => {
    if (t === NOT_MASKED) return;
    count++;
    if (predicted[i] === t) correct++;
  });
  return { correct, count, accuracy: count === 0 ? 0 : correct / count };
}

/** Perplexity, exp(mean masked loss); NaN when nothing was masked (there is no mean). */
export function perplexity(lossSum: number, count: number): number {
  return count > 0 ? Math.exp(lossSum / count) : NaN;
}
