import type { ClusterHandle } from "../../actors/api.js";
import { plainTrainLoop } from "../../actors/compute/baseline.js";
import { connectCluster } from "../../actors/remote.js";
import { Daemons } from "./daemons.js";
import { measureRawScaling, type RawScalingPlan, type RawScalingResult } from "./raw-scaling.js";
import { resilienceJob } from "./resilience.js";
import { measureScaling, medianFigure, MODES, type ModeName, type ScalingResult } from "./scaling.js";
import { median } from "./stats.js";
import { loopOptions } from "./workloads.js";

/** Sizes of the training measurements. */
export interface TrainingPlan {
  /** Steps of the plain-tfjs reference loop (after a short warm-up). */
  plainSteps: number;
  /** Epochs of the MNIST one- and two-worker jobs (every mode too). */
  epochs: number;
  /** Rounds of the two-worker jobs (weak, strong, each mode), interleaved. */
  rounds: number;
  /** Epochs of the heavy model's jobs. */
  heavyEpochs: number;
  /** Cancel each heavy job after this many steps (quick runs); see `ScalingPlan`. */
  heavyMaxSteps?: number;
  /** Two plain loops in two threads against one, for the MNIST model and for the heavy one. */
  raw: RawScalingPlan;
  rawHeavy: RawScalingPlan;
  /** SIGKILLs of a trainer's daemon in the resilience job (before the coordinator's), and its epochs. */
  kills: number;
  resilienceEpochs: number;
}

/** A mode's samples/s against the default synchronous mode on the same two-worker weak job. */
export interface ModeFigure {
  samplesPerSec: number;
  speedup: number;
  accuracy: number;
}

/** What the training measurements found. */
export interface TrainingResult {
  backend: string;
  plainSamplesPerSec: number;
  oneWorkerSamplesPerSec: number;
  /** Two workers, weak scaling (median over the rounds). */
  twoWorkerSamplesPerSec: number;
  twoWorkerStrongSamplesPerSec: number;
  trainerOverheadRatio: number;
  /** The same with one step of staleness: the overlap of compute with the commit it buys. */
  trainerOverheadRatioStale: number;
  /** The one-worker job with local steps ÷ the plain loop. */
  trainerOverheadRatioLocal: number;
  /** Two workers with local steps (weak) ÷ one worker with local steps. */
  scaling2Local: number;
  scaling2: number;
  scaling2Strong: number;
  rawScaling2: number;
  scalingEfficiency: number;
  scaling2Heavy: number;
  rawScaling2Heavy: number;
  scalingEfficiencyHeavy: number;
  modes: Record<ModeName, ModeFigure>;
  raw: RawScalingResult;
  rawHeavy: RawScalingResult;
  /** Every job's samples/s and accuracy, per round. */
  jobs: ScalingResult;
  /** SIGKILL → the next committed step, per kill (detection included). */
  recoverySeconds: number[];
  /** SIGKILL → the coordinator's record of the death, per kill. */
  detectionSeconds: number[];
  recoveryMedianS: number;
  failoverS: number;
  /** SIGKILL of the coordinator's daemon → the standby's record of the takeover. */
  failoverDetectionS: number;
  peakRssMB: number;
  peakRssByNode: Record<string, number>;
  /** Time between committed steps of the one-worker job (its tail holds evaluations and checkpoints), and the plain loop's step. */
  oneWorkerStepMs: { medianMs: number; meanMs: number };
  plainStepMs: number;
  /** Final test accuracy of each job (median over rounds), same epochs within MNIST and within heavy. */
  accuracy: Record<string, number>;
}

const NODES = ["a", "b", "c"];

/**
 * MNIST training: the plain tfjs loop, two plain loops in two threads against one (MNIST and the
 * heavy model), then on daemons (one process per node, over the benchmark's nats-server): the
 * scaling jobs (see `measureScaling`), a job whose trainers' daemons are SIGKILLed and restarted,
 * and a job whose coordinator's daemon is SIGKILLed.
 */
export async function measureTraining(
  url: string,
  cluster: string,
  plan: TrainingPlan,
  flockBin: string,
  say: (line: string) => void,
): Promise<TrainingResult> {
  const plainOpts = loopOptions("mnist", plan.plainSteps);
  say(`plain tfjs loop: ${plan.plainSteps} steps of ${plainOpts.batchSize}`);
  // Warm-up as long as the part of each flock job that steadySamplesPerSec skips (JIT, wasm tier-up).
  await plainTrainLoop({ ...plainOpts, steps: 25 });
  const plain = await plainTrainLoop(plainOpts);
  say(`plain tfjs loops in two threads against one: ${plan.raw.rounds} round(s), MNIST and heavy model`);
  const raw = await measureRawScaling("mnist", plan.raw);
  const rawHeavy = await measureRawScaling("heavy", plan.rawHeavy);

  const daemons = new Daemons(flockBin, url, cluster);
  let client: ClusterHandle | undefined;
  try {
    say("daemons a, b");
    await Promise.all(NODES.slice(0, 2).map((id) => daemons.start(id)));
    client = await connectCluster({ servers: url, cluster });
    await waitAlive(client, NODES.slice(0, 2));
    const { epochs, rounds, heavyEpochs, heavyMaxSteps } = plan;
    const jobs = await measureScaling(
      client,
      { epochs, rounds, heavyEpochs, ...(heavyMaxSteps === undefined ? {} : { heavyMaxSteps }) },
      say,
    );

    say("daemon c");
    await daemons.start("c");
    await waitAlive(client, NODES);
    say(`resilience job: SIGKILL of the coordinator's daemon, then ${plan.kills} of a trainer's`);
    const { recoverySeconds, detectionSeconds, failoverS, failoverDetectionS } = await resilienceJob(
      client,
      daemons,
      plan.kills,
      plan.resilienceEpochs,
    );
    const peakRssByNode = daemons.peakRssMB();
    return {
      ...figures(jobs, plain.samplesPerSec, raw, rawHeavy),
      backend:
        jobs.backend === plain.backend ? plain.backend : `${plain.backend} (plain) / ${jobs.backend} (flock)`,
      plainSamplesPerSec: plain.samplesPerSec,
      recoverySeconds,
      detectionSeconds,
      recoveryMedianS: median(recoverySeconds),
      failoverS,
      failoverDetectionS,
      peakRssMB:
        Object.keys(peakRssByNode).length > 0 ? Math.max(...Object.values(peakRssByNode)) : Number.NaN,
      peakRssByNode,
      plainStepMs: (1000 * plainOpts.batchSize) / plain.samplesPerSec,
    };
  } finally {
    await client?.close().catch(() => undefined);
    await daemons.stop();
  }
}

/** The throughput figures from the jobs and the plain loops. */
function figures(
  jobs: ScalingResult,
  plainRate: number,
  raw: RawScalingResult,
  rawHeavy: RawScalingResult,
): Omit<
  TrainingResult,
  | "backend"
  | "plainSamplesPerSec"
  | "recoverySeconds"
  | "detectionSeconds"
  | "recoveryMedianS"
  | "failoverS"
  | "failoverDetectionS"
  | "peakRssMB"
  | "peakRssByNode"
  | "plainStepMs"
> {
  const one = jobs.oneWorker;
  const weak = medianFigure(jobs.weak);
  const strong = medianFigure(jobs.strong);
  const scaling2 = weak.samplesPerSec / one.samplesPerSec;
  const scaling2Heavy = jobs.heavyTwoWorkers.samplesPerSec / jobs.heavyOneWorker.samplesPerSec;
  const mode = (name: ModeName): ModeFigure => {
    const m = medianFigure(jobs.modes[name]);
    return {
      samplesPerSec: m.samplesPerSec,
      speedup: m.samplesPerSec / weak.samplesPerSec,
      accuracy: m.accuracy,
    };
  };
  const modes: Record<ModeName, ModeFigure> = {
    staleness: mode("staleness"),
    fp16: mode("fp16"),
    int8: mode("int8"),
    local: mode("local"),
  };
  return {
    oneWorkerSamplesPerSec: one.samplesPerSec,
    twoWorkerSamplesPerSec: weak.samplesPerSec,
    twoWorkerStrongSamplesPerSec: strong.samplesPerSec,
    trainerOverheadRatio: one.samplesPerSec / plainRate,
    trainerOverheadRatioStale: jobs.oneWorkerStale.samplesPerSec / plainRate,
    trainerOverheadRatioLocal: jobs.oneWorkerLocal.samplesPerSec / plainRate,
    scaling2Local: modes.local.samplesPerSec / jobs.oneWorkerLocal.samplesPerSec,
    scaling2,
    scaling2Strong: strong.samplesPerSec / one.samplesPerSec,
    rawScaling2: raw.rawScaling2,
    scalingEfficiency: scaling2 / raw.rawScaling2,
    scaling2Heavy,
    rawScaling2Heavy: rawHeavy.rawScaling2,
    scalingEfficiencyHeavy: scaling2Heavy / rawHeavy.rawScaling2,
    modes,
    raw,
    rawHeavy,
    jobs,
    oneWorkerStepMs: jobs.oneWorkerStepMs,
    accuracy: {
      oneWorker: one.accuracy,
      oneWorkerStale: jobs.oneWorkerStale.accuracy,
      oneWorkerLocal: jobs.oneWorkerLocal.accuracy,
      twoWorkers: weak.accuracy,
      twoWorkersStrong: strong.accuracy,
      ...Object.fromEntries(MODES.map((m) => [m.name, modes[m.name].accuracy])),
      heavyOneWorker: jobs.heavyOneWorker.accuracy,
      heavyTwoWorkers: jobs.heavyTwoWorkers.accuracy,
    },
  };
}

async function waitAlive(client: ClusterHandle, nodes: string[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!nodes.every((n) => client.aliveNodes().includes(n))) {
    if (Date.now() > deadline)
      throw new Error(
        `nodes ${nodes.join(", ")} not all alive after ${timeoutMs} ms (alive: ${client.aliveNodes().join(", ")})`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}
