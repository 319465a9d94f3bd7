import { z } from "zod";
import { MODEL_JSON_BYTES, MODEL_WEIGHT_BYTES } from "./model.js";

/** Most records in one range request (ranges are far smaller; this bounds a hostile one). */
export const MAX_RANGE_RECORDS = 16_384;
/** Most raw feature values in one range request. */
const MAX_RANGE_VALUES = 4 << 20;
/** Most characters of one record's text. */
const MAX_TEXT_CHARS = 1 << 20;

const runId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, "expected bytes");
const float64 = z.custom<Float64Array>((v) => v instanceof Float64Array, "expected a Float64Array");
const float32 = z.custom<Float32Array>((v) => v instanceof Float32Array, "expected a Float32Array");

/** Load the run's model (the client sends it once per predictor; the wire chunks it). */
export const PredictorLoad = z.strictObject({
  type: z.literal("predictor.load"),
  run: runId,
  topology: z.string().max(MODEL_JSON_BYTES),
  weightSpecs: z.string().max(MODEL_JSON_BYTES),
  weights: bytes.refine((b) => b.byteLength <= MODEL_WEIGHT_BYTES, "weights too large"),
  info: z.string().max(MODEL_JSON_BYTES),
});

/** Predict records `[start, start + n)` of the run's input, given their raw features and text. */
export const PredictorRange = z
  .strictObject({
    type: z.literal("predictor.range"),
    run: runId,
    range: z.number().int().min(0),
    attempt: z.number().int().min(0),
    start: z.number().int().min(0),
    n: z.number().int().min(1).max(MAX_RANGE_RECORDS),
    x: float64.refine((x) => x.length <= MAX_RANGE_VALUES, "too many feature values"),
    text: z.array(z.string().max(MAX_TEXT_CHARS)).max(MAX_RANGE_RECORDS).optional(),
  })
  .refine((m) => m.text === undefined || m.text.length === m.n, "one text per record");

/**
 * The predictor's own idle check (a timer's tell to itself): it stops only when nothing came for
 * its idle time, so one sent by anyone else changes nothing.
 */
export const PredictorIdle = z.strictObject({ type: z.literal("predictor.idle") });

/** Commands a predictor accepts. */
export const PredictorCommand = z.discriminatedUnion("type", [PredictorLoad, PredictorRange, PredictorIdle]);
export type PredictorCommand = z.infer<typeof PredictorCommand>;

/** The model is loaded: ranges may come. */
export const PredictorLoaded = z.strictObject({
  type: z.literal("predictor.loaded"),
  run: runId,
  node: z.string().max(256),
  backend: z.string().max(64),
});
export type PredictorLoaded = z.infer<typeof PredictorLoaded>;

/** A range's class probabilities, `n × classes`. */
export const PredictorResult = z.strictObject({
  type: z.literal("predictor.result"),
  run: runId,
  range: z.number().int().min(0),
  attempt: z.number().int().min(0),
  node: z.string().max(256),
  probs: float32.refine((p) => p.length <= MAX_RANGE_RECORDS * 100_000, "too many values"),
});
export type PredictorResult = z.infer<typeof PredictorResult>;

/** Every message of a prediction run, for the message registry of the daemons and the client. */
export const PREDICTOR_MESSAGES = [PredictorCommand, PredictorLoaded, PredictorResult];
