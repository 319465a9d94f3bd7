/**
 * Runs the mini-BERT workflow on one cluster: pre-train, export, fine-tune from the export, train
 * the same classifier from scratch; and sums up the figures the example prints.
 * @module
 */
import { join } from "node:path";
import { z } from "zod";
import {
  resolveJobSpec,
  runJob,
  saveJobModel,
  type ClusterHandle,
  type ExportedModel,
  type TrainResult,
} from "../../actors/api.js";
import type { JobSpec } from "../../actors/job/spec.js";
import type { Logger } from "../../runtime/log.js";
import { JobTimeline } from "../../tools/cli/follow.js";
import { createProgress, type ProgressStream } from "../../tools/report/index.js";
import { classifierJob, pretrainJob, type MiniBertSizes, type PhaseCommon } from "./config.js";
import type { MiniBertData } from "../../actors/compute/spam-corpus.js";

/** The phases, in the order they run. */
export const PHASES = ["pretrain", "finetune", "scratch"] as const;
/** One of {@link PHASES}. */
export type PhaseName = (typeof PHASES)[number];

/** One finished phase: its spec, result, events and exported model. */
export interface PhaseRun {
  phase: PhaseName;
  spec: JobSpec;
  result: TrainResult;
  timeline: JobTimeline;
  model: ExportedModel;
  /** The export folder (`model.json`, `weights.bin`, `flock.json`). */
  dir: string;
}

/** The three phases of a run. */
export type MiniBertRun = Record<PhaseName, PhaseRun>;

/** Options of {@link runMiniBert}. */
export interface WorkflowOptions extends PhaseCommon {
  /** Export folders go under it: `pretrained/`, `finetuned/`, `scratch/`. */
  modelsDir: string;
  /** Progress lines (stderr with `--json`). */
  out: ProgressStream;
  log?: Logger;
}

/** A job's masked-LM figures, which a `task: "mlm"` result carries beside the common ones. */
const MlmFigures = z.object({ maskedAccuracy: z.number(), perplexity: z.number() });

/** The masked-LM accuracy and perplexity of a pre-training result; throws when they are missing. */
export function mlmFigures(result: TrainResult): z.infer<typeof MlmFigures> {
  const parsed = MlmFigures.safeParse(result);
  if (!parsed.success) throw new Error(`job ${result.job} reported no maskedAccuracy/perplexity`);
  return parsed.data;
}

async function runPhase(
  cluster: ClusterHandle,
  phase: PhaseName,
  input: Parameters<typeof resolveJobSpec>[0],
  dir: string,
  opts: WorkflowOptions,
): Promise<PhaseRun> {
  const spec = resolveJobSpec(input);
  opts.out.write(`mini-bert: ${phase}: job ${spec.id} (${spec.name}) on ${cluster.describe}\n`);
  const progress = createProgress(opts.out);
  const timeline = new JobTimeline();
  const result = await runJob(cluster, spec, { log: opts.log, onEvent: timeline.follow(progress) });
  progress.done();
  if (result.status !== "completed")
    throw new Error(`mini-bert: ${phase} job ${spec.id} ended ${result.status}`);
  const model = await saveJobModel(cluster, spec, result, dir);
  return { phase, spec, result, timeline, model, dir };
}

/**
 * Runs the three phases one after the other on `cluster`; every phase uses `opts.workers`
 * trainers. The classifier phases read text with the pre-trained export's tokenizer.
 */
export async function runMiniBert(
  cluster: ClusterHandle,
  data: MiniBertData,
  sizes: MiniBertSizes,
  opts: WorkflowOptions,
): Promise<MiniBertRun> {
  const dirs = {
    pretrain: join(opts.modelsDir, "pretrained"),
    finetune: join(opts.modelsDir, "finetuned"),
    scratch: join(opts.modelsDir, "scratch"),
  };
  const pretrain = await runPhase(cluster, "pretrain", pretrainJob(data, sizes, opts), dirs.pretrain, opts);
  const finetune = await runPhase(
    cluster,
    "finetune",
    classifierJob(data, sizes, opts, dirs.pretrain, true),
    dirs.finetune,
    opts,
  );
  const scratch = await runPhase(
    cluster,
    "scratch",
    classifierJob(data, sizes, opts, dirs.pretrain, false),
    dirs.scratch,
    opts,
  );
  return { pretrain, finetune, scratch };
}

/** Mean of the finite values of `xs` (NaN when none). */
function mean(xs: readonly number[]): number {
  const finite = xs.filter(Number.isFinite);
  return finite.length === 0 ? NaN : finite.reduce((a, b) => a + b, 0) / finite.length;
}

/** Median samples/s of a phase's steps after the first (which includes the trainers' warm-up). */
export function stepRate(run: PhaseRun): number {
  const rates = run.timeline.steps
    .slice(1)
    .map((s) => s.samplesPerSec)
    .filter((r) => r > 0)
    .sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)] ?? NaN;
}

/** Mean training loss of the first and of the last tenth of a phase's steps (at least 3 each). */
export function lossEnds(run: PhaseRun): { start: number; end: number } {
  const losses = run.timeline.steps.map((s) => s.loss);
  const k = Math.max(3, Math.ceil(losses.length / 10));
  return { start: mean(losses.slice(0, k)), end: mean(losses.slice(-k)) };
}

/** The example's result: the `--json` line. */
export interface MiniBertSummary {
  pretrainMaskedAccuracy: number;
  pretrainPerplexity: number;
  pretrainLossStart: number;
  pretrainLossEnd: number;
  finetuneAccuracy: number;
  scratchAccuracy: number;
  /** Labelled examples the classifier phases trained on. */
  labelled: number;
  testExamples: number;
  pretrainExamples: number;
  workers: number;
  backend: string;
  samplesPerSec: Record<PhaseName, number>;
  phaseSeconds: Record<PhaseName, number>;
  jobs: Record<PhaseName, string>;
  models: Record<PhaseName, string>;
  wallSeconds: number;
  report?: string;
}

/** The figures of a run. */
export function summarize(
  run: MiniBertRun,
  data: MiniBertData,
  workers: number,
  wallSeconds: number,
): MiniBertSummary {
  const mlm = mlmFigures(run.pretrain.result);
  const loss = lossEnds(run.pretrain);
  const per = <T>(f: (r: PhaseRun) => T): Record<PhaseName, T> => ({
    pretrain: f(run.pretrain),
    finetune: f(run.finetune),
    scratch: f(run.scratch),
  });
  return {
    pretrainMaskedAccuracy: mlm.maskedAccuracy,
    pretrainPerplexity: mlm.perplexity,
    pretrainLossStart: loss.start,
    pretrainLossEnd: loss.end,
    finetuneAccuracy: run.finetune.result.accuracy,
    scratchAccuracy: run.scratch.result.accuracy,
    labelled: data.labelled.records,
    testExamples: data.test.records,
    pretrainExamples: data.pretrain.records,
    workers,
    backend: [...new Set(PHASES.map((p) => run[p].result.backend))].join(", "),
    samplesPerSec: per(stepRate),
    phaseSeconds: per((r) => r.result.wallSeconds),
    jobs: per((r) => r.result.job),
    models: per((r) => r.dir),
    wallSeconds,
  };
}
