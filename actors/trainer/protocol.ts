import { z } from "zod";

const term = z.number().int().min(0);

/** Where the reducers are: reducer r owns parameters `[bounds[r], bounds[r+1])`. */
export const ReducerMap = z.strictObject({
  addresses: z.array(z.string()).min(1),
  bounds: z.array(z.number().int().min(0)).min(2),
});
export type ReducerMap = z.infer<typeof ReducerMap>;

/** Get ready for the job: load the parameters of `version` (from the reducers, or initialise them when 0). */
export const Prepare = z.strictObject({
  type: z.literal("trainer.prepare"),
  term,
  version: z.number().int().min(0),
  reducers: ReducerMap,
});
/** The trainer is ready: its backend and the hash of the parameters it holds. */
export const Prepared = z.strictObject({
  type: z.literal("trainer.prepared"),
  version: z.number().int(),
  hash: z.string(),
  backend: z.string(),
  device: z.string(),
  paramCount: z.number().int(),
  trainSize: z.number().int(),
});
/**
 * Compute step `step` on `batchSize` samples with the parameters of version `on` (`step - 1`
 * when absent: synchronous; `step - 2` with one step of staleness).
 */
export const StartStep = z.strictObject({
  type: z.literal("trainer.step"),
  term,
  step: z.number().int().min(1),
  on: z.number().int().min(0).optional(),
  /** Bumped each time the same step is redone (after an abort). */
  attempt: z.number().int().min(0),
  batchSize: z.number().int().min(0),
  /** The data loader to draw the batch from (on the trainer's node). */
  loader: z.string(),
  reducers: ReducerMap,
  reportHash: z.boolean(),
});
/** Asks for a slice of the trainer's current parameters (to seed a reducer). */
export const FetchParams = z.strictObject({
  type: z.literal("trainer.fetch"),
  version: z.number().int().min(0),
  offset: z.number().int().min(0),
  length: z.number().int().min(0),
});
/** Reply to {@link FetchParams}. */
export const ParamsCopy = z.strictObject({
  type: z.literal("trainer.params"),
  version: z.number().int(),
  offset: z.number().int(),
  data: z.instanceof(Float32Array),
});

/** Commands a trainer accepts. */
export const TrainerCommand = z.discriminatedUnion("type", [
  Prepare,
  Prepared,
  StartStep,
  FetchParams,
  ParamsCopy,
]);
export type TrainerCommand = z.infer<typeof TrainerCommand>;
export type StartStep = z.infer<typeof StartStep>;
export type Prepared = z.infer<typeof Prepared>;
export type ParamsCopy = z.infer<typeof ParamsCopy>;
export type Prepare = z.infer<typeof Prepare>;
export type FetchParams = z.infer<typeof FetchParams>;
