import { z } from "zod";
import { BatchRef } from "../../messages/index.js";

/** A checkpoint part's size and sha256 (lower-case hex), as acknowledged, listed and checked. */
export const PartDigest = z.strictObject({
  bytes: z
    .number()
    .int()
    .min(0)
    .max(2 ** 40),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const term = z.number().int().min(0);

/** A loader asks for positions to prefetch. */
export const LeaseShards = z.strictObject({
  type: z.literal("coord.lease"),
  term,
  member: z.string(),
  count: z.number().int().min(1),
});
/** A trainer finished its part of a step (gradient slices already sent to the reducers). */
export const StepDone = z.strictObject({
  type: z.literal("coord.done"),
  term,
  step: z.number().int().min(1),
  attempt: z.number().int().min(0),
  member: z.string(),
  batch: BatchRef.nullable(),
  n: z.number().int().min(0),
  lossSum: z.number(),
  computeMs: z.number(),
  /** Hash of the parameters the gradient was computed on (version step-1), every hashEvery steps. */
  hash: z.string().optional(),
  backend: z.string().optional(),
});
/** A reducer applied a committed step to its slice. */
export const SliceApplied = z.strictObject({
  type: z.literal("coord.applied"),
  term,
  step: z.number().int(),
  attempt: z.number().int(),
  r: z.number().int(),
  /** Members whose slices the reducer summed, and their sample count: audited against the commit set. */
  summed: z.array(z.string()),
  n: z.number().int(),
});
/** A reducer lacks some contributors' slices for a commit. */
export const SlicesMissing = z.strictObject({
  type: z.literal("coord.missing"),
  term,
  step: z.number().int(),
  attempt: z.number().int(),
  r: z.number().int(),
  members: z.array(z.string()),
  reason: z.string(),
});
/** The evaluator scored a parameter version. */
export const Evaluated = z.strictObject({
  type: z.literal("coord.evaluated"),
  term,
  version: z.number().int(),
  loss: z.number(),
  accuracy: z.number(),
  n: z.number().int(),
});
/** A reducer wrote its checkpoint part. */
export const Checkpointed = z.strictObject({
  type: z.literal("coord.checkpointed"),
  term,
  step: z.number().int(),
  r: z.number().int(),
  /** Size and sha256 of the part as written: the manifest names them, a restore checks them. */
  ...PartDigest.shape,
});
/**
 * A client cancels the job: it ends as failed with "cancelled by <by>". `by` names the sender's
 * node (checked like a member's report), so the error says who cancelled.
 */
export const CancelJob = z.strictObject({
  type: z.literal("coord.cancel"),
  by: z.string().min(1).max(128),
});
/** Asks for the job's status. */
export const GetStatus = z.strictObject({ type: z.literal("coord.status") });
/** Reply to {@link GetStatus}. */
export const CoordinatorStatus = z.strictObject({
  type: z.literal("coord.status.reply"),
  phase: z.string(),
  term: z.number().int(),
  step: z.number().int(),
  epoch: z.number().int(),
});
/** Reply to a lease request: `lease` is null when nothing is free now. */
export const Leased = z.strictObject({
  type: z.literal("loader.leased"),
  term,
  lease: z
    .strictObject({
      id: z.string(),
      epoch: z.number().int(),
      ranges: z.array(z.tuple([z.number().int(), z.number().int()])),
    })
    .nullable(),
  finished: z.boolean(),
});

/** Commands the coordinator accepts from other nodes. */
export const CoordinatorCommand = z.discriminatedUnion("type", [
  LeaseShards,
  StepDone,
  SliceApplied,
  SlicesMissing,
  Evaluated,
  Checkpointed,
  CancelJob,
  GetStatus,
]);
export type CoordinatorCommand = z.infer<typeof CoordinatorCommand>;
export type StepDone = z.infer<typeof StepDone>;
export type Leased = z.infer<typeof Leased>;
