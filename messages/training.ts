import { z } from "zod";

/**
 * A loss or an accuracy: any number, NaN and ±Infinity included (a diverged model's loss is one of
 * them), so a job whose loss blew up still reports its steps and its result instead of having them
 * refused as bad input.
 */
const metric = z.custom<number>((v) => typeof v === "number", "expected a number");

/**
 * Training messages that several actor kinds share. Per-actor commands live next to each actor
 * (actors/<kind>/protocol.ts); these cross kinds: the parameter all-gather and the job's events.
 */

/** One batch: positions `[start, end)` of one epoch's sample order, inside a shard lease. */
export const BatchRef = z.strictObject({
  lease: z.string().max(64),
  epoch: z.number().int().min(0),
  start: z.number().int().min(0),
  end: z.number().int().min(0),
});

/** A reducer's parameter slice after committing a step (version = that step); fanned out on the job's params topic. */
export const ParamsSlice = z.strictObject({
  type: z.literal("params.slice"),
  job: z.string(),
  term: z.number().int(),
  version: z.number().int().min(0),
  /** Attempt of the step that produced this version (a redone step publishes its version again). */
  attempt: z.number().int().min(0),
  r: z.number().int().min(0),
  offset: z.number().int().min(0),
  data: z.instanceof(Float32Array),
});
export type ParamsSlice = z.infer<typeof ParamsSlice>;

const Membership = z.strictObject({
  kind: z.enum(["join", "death", "leave", "suspect", "recovered", "resize", "failover", "straggler"]),
  node: z.string(),
  detail: z.string().optional(),
  recoverySeconds: z.number().optional(),
});

/** One committed step, as later step events repeat it. */
const StepSummary = z.strictObject({
  step: z.number().int(),
  epoch: z.number().int(),
  samples: z.number().int(),
  loss: metric,
  members: z.number().int(),
  at: z.number(),
  t: z.number(),
});
/** One committed step, as later step events repeat it. */
export type StepSummary = z.infer<typeof StepSummary>;

/** One membership change of the job, as the result records it (with the step and times it happened at). */
const MembershipRecord = Membership.extend({ step: z.number().int(), t: z.number(), at: z.number() });

/** One evaluation of the model on the held-out set. */
const EvalRecord = z.strictObject({
  step: z.number().int(),
  epoch: z.number().int(),
  t: z.number(),
  loss: metric,
  accuracy: metric,
});

/**
 * The result of a training job: the design's contract (status, epochs, steps, accuracy, loss,
 * backend, samples per epoch, replica consistency, membership changes, wall time) plus the evidence
 * the chaos harness and the reports check (audits, hashes, the membership log, evaluations).
 */
export const TrainResult = z.strictObject({
  /** "completed" when the job ran all its epochs. */
  status: z.string(),
  job: z.string(),
  name: z.string(),
  epochs: z.number().int(),
  steps: z.number().int(),
  accuracy: metric,
  loss: metric,
  /** The trainers' compute backends, joined with "+" ("unknown" before any reported). */
  backend: z.string(),
  samplesPerEpoch: z.array(z.number().int()),
  replicasConsistent: z.boolean(),
  hashChecks: z.number().int(),
  hashMismatches: z.array(z.string()),
  /** Every reducer's applied set compared with the commit set. */
  commitAudit: z.strictObject({ checked: z.number().int(), mismatches: z.array(z.string()) }),
  membershipChanges: z.number().int(),
  wallSeconds: z.number(),
  /** Nodes of the trainers at the end. */
  members: z.array(z.string()),
  recoverySeconds: z.array(z.number()),
  ledgerAudit: z.strictObject({
    epochs: z.array(
      z.strictObject({
        epoch: z.number().int(),
        committed: z.number().int(),
        duplicates: z.number().int(),
        missing: z.number().int(),
      }),
    ),
    exact: z.boolean(),
  }),
  membership: z.array(MembershipRecord),
  /** Records left out of `membership` by its bound (the first and the latest are kept), by class. */
  membershipRecordsDropped: z.strictObject({ quiet: z.number().int(), changes: z.number().int() }).optional(),
  evals: z.array(EvalRecord),
  /**
   * Committed steps redone after restores from a checkpoint: the sum over restores of (last
   * committed step − checkpoint step). 0 when the job never restored (optional: older results).
   */
  stepsLost: z.number().int().min(0).optional(),
  /** The job's task; absent for classification (and in older results). */
  task: z.literal("mlm").optional(),
  /** Task mlm: masked-token accuracy of the last evaluation (`accuracy` holds it too). */
  maskedAccuracy: metric.optional(),
  /** Task mlm: exp(the last evaluation's mean masked cross-entropy, `loss`); NaN before any evaluation. */
  perplexity: metric.optional(),
});
/** The result of a training job. */
export type TrainResult = z.infer<typeof TrainResult>;

/** What a job tells whoever follows it (the CLI, the API, the chaos harness), on the job's events topic. */
export const JobEvent = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("job.step"),
    job: z.string(),
    step: z.number().int(),
    epoch: z.number().int(),
    epochs: z.number().int(),
    loss: metric,
    members: z.number().int(),
    samples: z.number().int(),
    samplesPerSec: z.number(),
    at: z.number(),
    /**
     * Re-announced by a coordinator that took over: the step was durable when its predecessor died,
     * perhaps before announcing it. Followers count a step once, whichever copy they see first.
     */
    replay: z.boolean().optional(),
    t: z.number(),
    /**
     * The steps committed just before this one (the last few, oldest first). Events travel on core
     * NATS, at most once: one published into a connection that just broke (a NATS server killed)
     * is gone, and a follower fills the gap from the next event. See {@link stepsToCount}.
     */
    earlier: z.array(StepSummary).max(8).optional(),
    /**
     * With `balance: "throughput"`: the samples each member contributed to this step (its share
     * of the global batch), by node. Absent with equal shares.
     */
    shares: z
      .array(z.strictObject({ node: z.string(), n: z.number().int().min(0) }))
      .max(1024)
      .optional(),
  }),
  z.strictObject({
    type: z.literal("job.eval"),
    job: z.string(),
    step: z.number().int(),
    epoch: z.number().int(),
    loss: metric,
    accuracy: metric,
    t: z.number(),
  }),
  z.strictObject({
    type: z.literal("job.membership"),
    job: z.string(),
    step: z.number().int(),
    t: z.number(),
    at: z.number(),
    event: Membership,
  }),
  z.strictObject({
    type: z.literal("job.hash"),
    job: z.string(),
    version: z.number().int(),
    consistent: z.boolean(),
    hashes: z.record(z.string(), z.string()),
  }),
  z.strictObject({
    type: z.literal("job.finished"),
    job: z.string(),
    result: TrainResult,
  }),
  z.strictObject({ type: z.literal("job.failed"), job: z.string(), error: z.string() }),
]);
export type JobEvent = z.infer<typeof JobEvent>;

/** Schemas to register on every node that takes part in training. */
export const TRAINING_SHARED_MESSAGES = [ParamsSlice, JobEvent];

/**
 * The steps a follower should count for a step event, oldest first, each marked in `seen`: the
 * event's `earlier` steps not seen yet (their own events were lost), then the event's step, unless
 * it is a replay of a step already seen (a coordinator that took over re-announces the last
 * durable step). A step that arrives twice otherwise is counted twice: that is a double commit.
 */
export function stepsToCount(e: Extract<JobEvent, { type: "job.step" }>, seen: Set<number>): StepSummary[] {
  const out = (e.earlier ?? []).filter((s) => s.step < e.step && !seen.has(s.step));
  if (!(e.replay && seen.has(e.step))) out.push(stepSummary(e));
  for (const s of out) seen.add(s.step);
  return out;
}

/** A step event's step, as later step events repeat it in `earlier`. */
export function stepSummary(e: Extract<JobEvent, { type: "job.step" }>): StepSummary {
  return {
    step: e.step,
    epoch: e.epoch,
    samples: e.samples,
    loss: e.loss,
    members: e.members,
    at: e.at,
    t: e.t,
  };
}
