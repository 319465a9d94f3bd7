import { z } from "zod";
import { DatasetSpec } from "../compute/dataset-spec.js";
import { modelTooLarge } from "./model-bounds.js";
import { FreezeList, InitSource, fineTuneProblems } from "./fine-tune-spec.js";
import { MlmSpec, TaskSpec, boundedModel, taskProblems } from "./task-spec.js";

/**
 * Fewest steps between two checkpoints. A checkpoint writes every reducer's parameter slice and
 * optimizer state (three times the parameters with Adam) to the object store and waits for each
 * reducer's acknowledgement; at 1 a job would write that after every step, for recovery that loses
 * at most a few steps anyway (trainers hold the parameters; the object store keeps the last K).
 */
export const MIN_CHECKPOINT_EVERY = 5;
/** Largest interval of the periodic actions (evaluation, hash check, checkpoint), in steps. */
const MAX_EVERY = 1_000_000;

/** Steps of linear learning-rate warmup (the reducers' optimizer step count, see `warmupLr`). */
const Warmup = z.number().int().min(0).max(MAX_EVERY);

/** Optimizer hyper-parameters (applied by the reducers, each on its slice). */
export const OptimizerSpec = z.discriminatedUnion("name", [
  z.strictObject({
    name: z.literal("sgd"),
    lr: z.number().positive().max(10),
    momentum: z.number().min(0).max(0.9999).optional(),
    warmup: Warmup.optional(),
  }),
  z.strictObject({
    name: z.literal("adam"),
    lr: z.number().positive().max(10),
    beta1: z.number().min(0).max(0.9999).optional(),
    beta2: z.number().min(0).max(0.99999).optional(),
    epsilon: z.number().positive().max(1).optional(),
    warmup: Warmup.optional(),
  }),
]);

/**
 * The outer optimizer of local steps (DiLoCo): SGD with Nesterov momentum over the averaged
 * pseudo-gradient (the parameters a round started from minus those the local steps reached).
 */
export const OuterOptimizerSpec = z.strictObject({
  name: z.literal("nesterov").default("nesterov"),
  lr: z.number().positive().max(10).default(0.7),
  momentum: z.number().min(0).max(0.9999).default(0.5),
});

/**
 * How trainers and parameters keep in step. `staleness` (0 or 1): how far gradients may lag the
 * parameters. `every: H` > 1 (local steps: local SGD / DiLoCo): each committed step is a round in which
 * every trainer takes H optimizer steps of the job's `optimizer` on its own share of the round's
 * `H × globalBatch` samples, starting from the round's parameters; the reducers average what the
 * trainers moved and apply `outer` to it. Communication happens once per H batches.
 */
export const SyncSpec = z
  .strictObject({
    staleness: z.number().int().min(0).max(1).default(0),
    every: z.number().int().min(1).max(64).default(1),
    outer: OuterOptimizerSpec.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.every > 1 && s.staleness > 0)
      ctx.addIssue({ code: "custom", message: "local steps run with staleness 0 only", path: ["staleness"] });
    if (s.every === 1 && s.outer !== undefined)
      ctx.addIssue({
        code: "custom",
        message: "an outer optimizer needs local steps (every > 1)",
        path: ["outer"],
      });
  });

/**
 * A declarative training job: a model (registered name or tfjs layers config), a dataset (a
 * registered name or the user's files) and hyper-parameters. No code travels; this is all a node needs to take part.
 */
export const JobSpec = z
  .strictObject({
    /** Job id; generated when absent. Letters, digits, `-` and `_`. */
    id: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, "letters, digits, - and _ only (at most 64)")
      .optional(),
    /** Example name or a label for reports. */
    name: z.string().min(1).max(128).default("job"),
    model: z.union([z.string().min(1).max(128), z.record(z.string(), z.unknown())]),
    /** A built-in dataset name, or a CSV / JSONL dataset from `file://` URLs (see `FileDatasetSpec`). */
    dataset: DatasetSpec,
    /**
     * The sha256 of each `file://` data file, by URL: set by the submitter from its own copy
     * (`submitJob`); a node whose copy hashes otherwise is not given a trainer.
     */
    dataHashes: z
      .record(z.string().max(4096), z.string().regex(/^[0-9a-f]{64}$/))
      .refine((r) => Object.keys(r).length <= 4, "at most 4 data files")
      .optional(),
    epochs: z.number().int().min(1).max(1000),
    /** Samples per committed step, over all workers together; constant while the job resizes. */
    globalBatch: z
      .number()
      .int()
      .min(1)
      .max(1 << 20),
    optimizer: OptimizerSpec,
    minWorkers: z.number().int().min(1).max(1024).default(1),
    maxWorkers: z.number().int().min(1).max(1024).default(2),
    /** Parameter-server shards; default min(4, maxWorkers). */
    reducers: z.number().int().min(1).max(64).optional(),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(1),
    /** Evaluate on held-out data every K committed steps (and at the end). */
    evalEvery: z.number().int().min(1).max(MAX_EVERY).default(50),
    /** Trainers report a parameter hash every K steps; the coordinator checks they agree. */
    hashEvery: z.number().int().min(1).max(MAX_EVERY).default(10),
    /** Reducers checkpoint parameters and optimizer state every K steps. */
    checkpointEvery: z
      .number()
      .int()
      .min(MIN_CHECKPOINT_EVERY, `at least ${MIN_CHECKPOINT_EVERY} steps between checkpoints`)
      .max(MAX_EVERY)
      .default(25),
    /**
     * Complete checkpoints kept per job; older ones (and incomplete ones before the newest) are
     * deleted. At least 2: a step redone after a takeover rewrites the parts of the newest
     * checkpoint, and a restore reading it must still have the one before to fall back to.
     */
    keepCheckpoints: z.number().int().min(2).max(100).default(3),
    /** Samples a data loader leases at a time, as a multiple of its per-step batch. */
    prefetch: z.number().int().min(1).max(64).default(2),
    /** Compute backend preference of the trainers. */
    backend: z.enum(["auto", "gpu", "cpu", "wasm"]).default("auto"),
    /**
     * Longest a step waits for a slow member before leaving it out (ms); the failure deadline also
     * applies. A round of `sync.every` H waits H times as long (it computes H batches).
     */
    stepDeadlineMs: z.number().int().min(100).max(600_000).default(10_000),
    /** Longest the job waits for `minWorkers` before it is placed (ms). */
    placementTimeoutMs: z.number().int().min(1000).max(3_600_000).default(60_000),
    /**
     * How far gradients may lag the parameters. `staleness: 0` (default) is synchronous: step s
     * is computed on the parameters of step s−1. `staleness: 1` computes step s on those of step
     * s−2, so the coordinator starts it while step s−1 commits (PipeDream's one-step weight
     * staleness); commits still apply in order, so replicas stay bit-identical. `every: H`
     * makes each step a round of H local optimizer steps per trainer, averaged by the reducers
     * with an outer Nesterov optimizer (see {@link SyncSpec}).
     */
    sync: SyncSpec.default({ staleness: 0, every: 1 }),
    /**
     * Encoding of gradient slices on the wire: `fp16` or `int8` (per-block scale) with error
     * feedback kept on the trainer, so what a step leaves out is sent with the next.
     */
    compression: z.enum(["none", "fp16", "int8"]).default("none"),
    /**
     * How the global batch is split over the members. `equal` (default): the same share each.
     * `throughput`: each member's share follows its measured samples/s (an EWMA of its answers),
     * so a slow node no longer holds every step up; the global batch stays constant and shares
     * change only when a step is told (see `actors/coordinator/balance.ts`).
     */
    balance: z.enum(["equal", "throughput"]).default("equal"),
    /**
     * Fine-tuning: saved weights version 0 starts from, `file:///ABS/DIR` (a folder `flock train
     * --out` wrote) or `job://ID`. Layers matched by name and shape take them; the others (a new
     * head) keep the seeded initialisation.
     */
    init: InitSource.optional(),
    /** Layer names whose parameters never change (their gradients are zeroed on every trainer). */
    freeze: FreezeList.optional(),
    /**
     * With `init`: every kernel value that is exactly 0 in the saved weights (a model `flock export
     * --prune` wrote) stays exactly 0: its gradient entries are zeroed on every trainer, from the
     * first step, so no optimizer moves it. Biases are not pinned (pruning keeps them).
     */
    keepZeros: z.boolean().optional(),
    /**
     * `classify` (default): predict each sample's label. `mlm`: masked-language-model pre-training
     * on a tokenized text dataset (labels unused), with `text-transformer-mlm`; scored by masked-token
     * accuracy and perplexity. See `task-spec.ts`.
     */
    task: TaskSpec.default("classify"),
    /** Options of `task: "mlm"` (default `{ rate: 0.15 }`). */
    mlm: MlmSpec.optional(),
  })
  .refine((s) => s.minWorkers <= s.maxWorkers, {
    message: "minWorkers must not exceed maxWorkers",
    path: ["minWorkers"],
  })
  // Checked wherever a spec is parsed: in the submitting client and, from the wire, in every daemon.
  .superRefine((s, ctx) => {
    const tooLarge = modelTooLarge(boundedModel(s.model, s.dataset));
    if (tooLarge) ctx.addIssue({ code: "custom", message: tooLarge, path: ["model"] });
    for (const p of fineTuneProblems(s)) ctx.addIssue({ code: "custom", message: p.message, path: p.path });
    for (const p of taskProblems(s)) ctx.addIssue({ code: "custom", message: p.message, path: p.path });
  });
/** A declarative training job. */
export type JobSpec = z.infer<typeof JobSpec>;
/** A job spec as written by people (defaults not yet applied). */
export type JobSpecInput = z.input<typeof JobSpec>;

/** A job spec that failed validation; the message lists each problem with its path. */
export class InvalidJobSpecError extends Error {
  override name = "InvalidJobSpecError";
}

/** Validates a job spec, or throws {@link InvalidJobSpecError} saying what is wrong. */
export function parseJobSpec(input: unknown): JobSpec {
  const parsed = JobSpec.safeParse(input);
  if (!parsed.success) throw new InvalidJobSpecError(`invalid job spec:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
