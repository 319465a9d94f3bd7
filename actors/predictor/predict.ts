/**
 * Prediction of record ranges and its output: batches aligned to {@link PREDICT_BATCH} from a
 * range's start (ranges start at multiples of it), so every record is predicted in the same batch
 * whether the client runs the whole input or predictors run ranges of it; one JSONL line per
 * record; accuracy against the labels the input carries.
 * @module
 */
import { recordsToInputs, type PredictInput } from "./input.js";
import type { OpenModel } from "./model.js";

/** Records per model call. Ranges are multiples of it, so batches are the same in every mode. */
export const PREDICT_BATCH = 64;

/** Yields to the event loop between batches, so a daemon's heartbeats keep going while it predicts. */
const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Class probabilities of records `[start, end)`, `(end - start) × classes`. */
export async function predictRange(
  model: OpenModel,
  input: Pick<PredictInput, "x" | "text">,
  start: number,
  end: number,
): Promise<Float32Array> {
  const k = model.info.classes.length;
  const out = new Float32Array((end - start) * k);
  for (let at = start; at < end; at += PREDICT_BATCH) {
    const stop = Math.min(end, at + PREDICT_BATCH);
    const probs = model.predict(
      recordsToInputs(model.preprocessing, input, at, stop, model.info.tokenizer),
      stop - at,
    );
    out.set(probs, (at - start) * k);
    await yieldTurn();
  }
  return out;
}

/** The index of the largest of `k` values at `offset` (the first on a tie). */
function argmax(probs: Float32Array, offset: number, k: number): number {
  let best = 0;
  for (let c = 1; c < k; c++) if (probs[offset + c]! > probs[offset + best]!) best = c;
  return best;
}

/** The JSONL lines of `n` records' probabilities: `{"label": <class>, "probs": [...]}` each. */
export function formatLines(classes: readonly (string | number)[], probs: Float32Array, n: number): string {
  const k = classes.length;
  let text = "";
  for (let i = 0; i < n; i++) {
    const row = Array.from(probs.subarray(i * k, (i + 1) * k));
    text += `${JSON.stringify({ label: classes[argmax(probs, i * k, k)], probs: row })}\n`;
  }
  return text;
}

/** Counts correct predictions of records `[start, start + n)` against `truth` (-1: never correct). */
export function countCorrect(truth: Int32Array, start: number, probs: Float32Array, k: number): number {
  let correct = 0;
  const n = probs.length / k;
  for (let i = 0; i < n; i++) if (truth[start + i] === argmax(probs, i * k, k)) correct++;
  return correct;
}
