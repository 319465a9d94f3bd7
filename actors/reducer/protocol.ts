import { z } from "zod";
import { encodedBytes } from "../compute/compress.js";
import { PartDigest } from "../coordinator/protocol.js";
import { MAX_MODEL_PARAMETERS } from "../job/model-bounds.js";

const term = z.number().int().min(0);
/** Any Float32Array, also a view of a larger buffer (a trainer sends subarrays of its gradient). */
const float32 = z.custom<Float32Array>((v) => v instanceof Float32Array, "expected a Float32Array");

/**
 * A gradient slice in a lossy encoding (`compression` fp16 or int8, see `compute/compress.ts`):
 * `length` values in `bytes`. The size must be what the encoding takes for `length` values, so a
 * payload can never make the reducer allocate more than the length it checks against its slice.
 */
export const PackedGrad = z
  .strictObject({
    encoding: z.enum(["fp16", "int8"]),
    length: z.number().int().min(0).max(MAX_MODEL_PARAMETERS),
    bytes: z.custom<Uint8Array>((v) => v instanceof Uint8Array, "expected a Uint8Array"),
  })
  .refine((p) => p.bytes.length === encodedBytes(p.encoding, p.length), {
    message: "bytes do not hold `length` values in `encoding`",
    path: ["bytes"],
  });
export type PackedGrad = z.infer<typeof PackedGrad>;
/** A gradient slice on the wire: float32 (`compression: "none"`) or packed. */
export const GradData = z.union([float32, PackedGrad]);
export type GradData = z.infer<typeof GradData>;

/** A trainer's gradient slice for a step: the sum over its batch (n samples). */
export const GradSlice = z.strictObject({
  type: z.literal("reducer.grad"),
  term,
  step: z.number().int().min(1),
  attempt: z.number().int().min(0),
  member: z.string(),
  n: z.number().int().min(0),
  data: GradData,
});
/** Commit a step with exactly these contributors (sorted), `total` samples in all. */
export const CommitStep = z.strictObject({
  type: z.literal("reducer.commit"),
  term,
  step: z.number().int().min(1),
  attempt: z.number().int().min(0),
  contributors: z.array(z.string()),
  total: z.number().int().min(0),
});
/** Drop whatever was buffered for a step that will be redone; if the step was already applied, roll it back. */
export const AbortStep = z.strictObject({ type: z.literal("reducer.abort"), term, step: z.number().int() });
/** Acknowledges an abort: the version the reducer now holds. */
export const Aborted = z.strictObject({ type: z.literal("reducer.aborted"), version: z.number().int() });
/** Load parameters (and optionally optimizer state) for the slice. */
export const LoadSlice = z.strictObject({
  type: z.literal("reducer.load"),
  term,
  version: z.number().int().min(0),
  data: z.instanceof(Float32Array),
  /** Restore optimizer state from this checkpoint step, when one exists. */
  checkpointStep: z.number().int().nullable(),
});
/** Asks for the reducer's slice (joiners sync from it). */
export const FetchSlice = z.strictObject({ type: z.literal("reducer.fetch") });
/** Reply to {@link FetchSlice}. */
export const SliceCopy = z.strictObject({
  type: z.literal("reducer.slice"),
  version: z.number().int(),
  r: z.number().int(),
  offset: z.number().int(),
  data: z.instanceof(Float32Array),
});
/** Write the slice and its optimizer state to the blob store. */
export const WriteCheckpoint = z.strictObject({
  type: z.literal("reducer.checkpoint"),
  term,
  step: z.number().int(),
});
/**
 * Load parameters and optimizer state from this reducer's part of the checkpoint of `step` (a
 * restore: no trainer holds the parameters any more). The reducer reads its own part
 * (`jobNames.checkpoint(job, step, r)`) and refuses it unless its size and sha256 are the
 * manifest's `bytes` and `sha256` and it holds its slice at `step`.
 */
export const RestoreSlice = z.strictObject({
  type: z.literal("reducer.restore"),
  term,
  step: z.number().int().min(0),
  ...PartDigest.shape,
});
/** Acknowledges a load. */
export const Loaded = z.strictObject({
  type: z.literal("reducer.loaded"),
  version: z.number().int(),
  optimizerRestored: z.boolean(),
});

/** Commands a reducer accepts. */
export const ReducerCommand = z.discriminatedUnion("type", [
  GradSlice,
  CommitStep,
  AbortStep,
  Aborted,
  LoadSlice,
  RestoreSlice,
  FetchSlice,
  SliceCopy,
  WriteCheckpoint,
  Loaded,
]);
export type ReducerCommand = z.infer<typeof ReducerCommand>;
export type RestoreSlice = z.infer<typeof RestoreSlice>;
export type SliceCopy = z.infer<typeof SliceCopy>;
export type Aborted = z.infer<typeof Aborted>;
export type Loaded = z.infer<typeof Loaded>;
