import { randomUUID } from "node:crypto";
import { resolveJobSpec, runJob, type ClusterHandle, type TrainResult } from "../../actors/api.js";
import { cancelJob } from "../../actors/follow.js";
import type { JobSpecInput } from "../../actors/job/spec.js";
import { JobEvents, stepTimes, steadySamplesPerSec } from "./events.js";
import { median } from "./stats.js";
import { EXAMPLE, workloadOverrides, type Workload } from "./workloads.js";

/** Local steps a round in the bench's local-steps jobs (`sync: { every }`). */
export const LOCAL_STEPS = 8;

/**
 * The job spec's throughput options, each measured against the default synchronous mode on the
 * two-worker weak-scaling job: `figure` is mode samples/s ÷ default samples/s. A new option gets a
 * row here and a sentence in report.ts.
 */
export const MODES = [
  { name: "staleness", figure: "stalenessSpeedup", overrides: { sync: { staleness: 1 } } },
  { name: "fp16", figure: "fp16Speedup", overrides: { compression: "fp16" } },
  { name: "int8", figure: "int8Speedup", overrides: { compression: "int8" } },
  { name: "local", figure: "localStepsSpeedup", overrides: { sync: { every: LOCAL_STEPS } } },
] as const satisfies ReadonlyArray<{ name: string; figure: string; overrides: Partial<JobSpecInput> }>;

/** A mode's name. */
export type ModeName = (typeof MODES)[number]["name"];
/** A mode's figure in the report. */
export type ModeFigureKey = (typeof MODES)[number]["figure"];

/** Sizes of the scaling jobs. */
export interface ScalingPlan {
  /** Epochs of the MNIST jobs (one worker, two workers, every mode). */
  epochs: number;
  /** Rounds of the two-worker jobs (weak, strong, each mode), interleaved. */
  rounds: number;
  /** Epochs of the heavy model's jobs. */
  heavyEpochs: number;
  /**
   * Cancel each heavy job after this many committed steps (`--quick`): its figure then comes from
   * those steps, and it has no final accuracy (NaN). Absent: the jobs run their epochs.
   */
  heavyMaxSteps?: number;
}

/** One job's steady-state throughput and final accuracy. */
export interface JobFigure {
  samplesPerSec: number;
  accuracy: number;
}

/** What the scaling jobs found. */
export interface ScalingResult {
  backend: string;
  plan: ScalingPlan;
  /** The one-worker job's global batch: each worker's batch in the weak jobs. */
  batch: number;
  oneWorker: JobFigure;
  /** The one-worker job with one step of staleness (`sync: { staleness: 1 }`). */
  oneWorkerStale: JobFigure;
  /** The one-worker job with local steps (`sync: { every: LOCAL_STEPS }`). */
  oneWorkerLocal: JobFigure;
  /** Time between committed steps of the one-worker job (its tail holds evaluations and checkpoints). */
  oneWorkerStepMs: { medianMs: number; meanMs: number };
  /** Two workers, global batch doubled (each keeps the one-worker batch), per round. */
  weak: JobFigure[];
  /** Two workers, global batch as for one, per round. */
  strong: JobFigure[];
  /** The weak job with each mode's overrides, per round. */
  modes: Record<ModeName, JobFigure[]>;
  heavyOneWorker: JobFigure;
  heavyOneWorkerStepMs: { medianMs: number; meanMs: number };
  heavyTwoWorkers: JobFigure;
}

/** Median samples/s and accuracy of a variant's rounds. */
export function medianFigure(runs: readonly JobFigure[]): JobFigure {
  return {
    samplesPerSec: median(runs.map((r) => r.samplesPerSec)),
    accuracy: median(runs.map((r) => r.accuracy)),
  };
}

/**
 * The throughput jobs, on daemons already running: the one-worker MNIST job, then `rounds` rounds
 * of the two-worker jobs — weak scaling (global batch doubled), strong scaling (global batch as
 * for one) and the weak job in each mode — one after another in each round, so every variant sees
 * the same drift of the machine's load; then the heavy model's one- and two-worker (weak) jobs.
 */
export async function measureScaling(
  client: ClusterHandle,
  plan: ScalingPlan,
  say: (line: string) => void,
): Promise<ScalingResult> {
  const batch = resolveJobSpec(EXAMPLE).globalBatch;
  const one = { minWorkers: 1, maxWorkers: 1 };
  const two = { minWorkers: 2, maxWorkers: 2 };
  say(`one-worker job (${plan.epochs} epoch(s), batch ${batch})`);
  const oneJob = await trainJob(client, "mnist", { ...one, epochs: plan.epochs });
  say("one-worker job with one step of staleness");
  const oneStale = await trainJob(client, "mnist", { ...one, epochs: plan.epochs, sync: { staleness: 1 } });
  say(`one-worker job with ${LOCAL_STEPS} local steps a round`);
  const oneLocal = await trainJob(client, "mnist", {
    ...one,
    epochs: plan.epochs,
    sync: { every: LOCAL_STEPS },
  });

  const weak: JobFigure[] = [];
  const strong: JobFigure[] = [];
  const modes: Record<ModeName, JobFigure[]> = { staleness: [], fp16: [], int8: [], local: [] };
  const weakSpec = { ...two, epochs: plan.epochs, globalBatch: 2 * batch };
  for (let round = 1; round <= plan.rounds; round++) {
    say(
      `two-worker jobs, round ${round}/${plan.rounds}: weak, strong, ${MODES.map((m) => m.name).join(", ")}`,
    );
    weak.push((await trainJob(client, "mnist", weakSpec)).figure);
    strong.push((await trainJob(client, "mnist", { ...two, epochs: plan.epochs })).figure);
    for (const mode of MODES)
      modes[mode.name].push((await trainJob(client, "mnist", { ...weakSpec, ...mode.overrides })).figure);
  }

  say(`heavy model: one-worker and two-worker jobs (${plan.heavyEpochs} epoch(s))`);
  const heavyOne = await trainJob(client, "heavy", { ...one, epochs: plan.heavyEpochs }, plan.heavyMaxSteps);
  const heavyTwo = await trainJob(
    client,
    "heavy",
    { ...two, epochs: plan.heavyEpochs, globalBatch: 2 * batch },
    plan.heavyMaxSteps,
  );
  return {
    backend: oneJob.result?.backend ?? "unknown",
    plan,
    batch,
    oneWorker: oneJob.figure,
    oneWorkerStale: oneStale.figure,
    oneWorkerLocal: oneLocal.figure,
    oneWorkerStepMs: oneJob.stepMs,
    weak,
    strong,
    modes,
    heavyOneWorker: heavyOne.figure,
    heavyOneWorkerStepMs: heavyOne.stepMs,
    heavyTwoWorkers: heavyTwo.figure,
  };
}

async function trainJob(
  client: ClusterHandle,
  workload: Workload,
  overrides: Partial<JobSpecInput>,
  maxSteps?: number,
): Promise<{ result?: TrainResult; figure: JobFigure; stepMs: { medianMs: number; meanMs: number } }> {
  const events = new JobEvents();
  const id = `bench-${workload}-${randomUUID().slice(0, 8)}`;
  const spec = resolveJobSpec(EXAMPLE, { ...workloadOverrides(workload), ...overrides, id });
  let cancelled: Promise<unknown> | undefined;
  const onEvent = (e: Parameters<JobEvents["push"]>[0]): void => {
    events.push(e);
    if (maxSteps !== undefined && !cancelled && events.steps().length >= maxSteps)
      cancelled = cancelJob(client, id).catch(() => undefined);
  };
  let result: TrainResult | undefined;
  try {
    result = await runJob(client, spec, { onEvent });
    if (result.status !== "completed") throw new Error(`job ${spec.name} ended ${result.status}`);
  } catch (error) {
    if (!cancelled) throw error;
    await cancelled;
  }
  const steps = events.steps();
  return {
    ...(result ? { result } : {}),
    figure: { samplesPerSec: steadySamplesPerSec(steps), accuracy: result?.accuracy ?? Number.NaN },
    stepMs: stepTimes(steps),
  };
}
