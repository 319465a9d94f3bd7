import { cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { startNatsServer } from "../natsd/index.js";
import { measureBalance, type BalancePlan } from "./balance.js";
import { measureMessaging, type MessagingPlan } from "./messaging.js";
import { measurePredict, type PredictPlan } from "./predict.js";
import { measureReduce, type ReducePlan } from "./reduce.js";
import type { BenchReport, MachineInfo } from "./report.js";
import type { ModeFigureKey } from "./scaling.js";
import { measureTraining, type TrainingPlan, type TrainingResult } from "./training.js";

/** Sizes of a whole run. */
export interface BenchPlan {
  messaging: MessagingPlan;
  reduce: ReducePlan;
  training: TrainingPlan;
  balance: BalancePlan;
  predict: PredictPlan;
}

/** The full run: several minutes, figures stable to a few percent on an idle machine. */
export const FULL_PLAN: BenchPlan = {
  messaging: { tellMessages: 300_000, tellRounds: 5, window: 10_000, askRoundTrips: 2000, askRounds: 5 },
  reduce: { members: 4, gradientBytes: 4_000_000, steps: 15 },
  training: {
    plainSteps: 250,
    epochs: 2,
    rounds: 2,
    heavyEpochs: 1,
    raw: { rounds: 3, steps: 150, warmupSteps: 25 },
    rawHeavy: { rounds: 3, steps: 30, warmupSteps: 5 },
    kills: 3,
    resilienceEpochs: 5,
  },
  balance: { epochs: 1, rounds: 2, slowMsPerSample: 1 },
  predict: { records: 48_000, rangeSize: 256 },
};

/**
 * `--quick`: a few minutes, every figure measured once (one trainer kill, not three; each mode
 * once, one epoch), noisier.
 */
export const QUICK_PLAN: BenchPlan = {
  messaging: { tellMessages: 60_000, tellRounds: 3, window: 10_000, askRoundTrips: 300, askRounds: 3 },
  reduce: { members: 4, gradientBytes: 4_000_000, steps: 3 },
  training: {
    plainSteps: 60,
    epochs: 1,
    rounds: 1,
    heavyEpochs: 1,
    heavyMaxSteps: 15,
    raw: { rounds: 2, steps: 60, warmupSteps: 25 },
    rawHeavy: { rounds: 2, steps: 15, warmupSteps: 5 },
    kills: 1,
    resilienceEpochs: 3,
  },
  balance: { epochs: 1, rounds: 1, slowMsPerSample: 1 },
  predict: { records: 12_000, rangeSize: 256 },
};

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

function machine(): MachineInfo {
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: totalmem() / 2 ** 30,
    node: process.versions.node,
    platform: `${process.platform} ${process.arch}`,
    loadAvg: [Number(loadavg()[0]!.toFixed(2)), Number.NaN],
    date: new Date().toISOString(),
  };
}

/** Each mode's speedup under its figure's name (`stalenessSpeedup`, …). */
function modeFigures(t: TrainingResult): Record<ModeFigureKey, number> {
  return {
    stalenessSpeedup: t.modes.staleness.speedup,
    fp16Speedup: t.modes.fp16.speedup,
    int8Speedup: t.modes.int8.speedup,
    localStepsSpeedup: t.modes.local.speedup,
  };
}

/**
 * Runs every measurement against a nats-server of its own (JetStream on, 127.0.0.1, a free port)
 * and returns the report. `say` receives one progress line per phase.
 */
export async function runBench(
  plan: BenchPlan,
  quick: boolean,
  say: (line: string) => void,
): Promise<BenchReport> {
  const started = performance.now();
  const info = machine();
  const server = await startNatsServer({ jetstream: true, httpPort: false });
  try {
    say(`nats-server at ${server.url}; tell and ask against raw NATS`);
    const messaging = await measureMessaging(server.url, "bench-msg", plan.messaging, here("./peer.js"));
    say(
      `reduce-scatter + all-gather: ${plan.reduce.members} trainers, ${plan.reduce.gradientBytes / 1e6} MB gradient`,
    );
    const reduce = await measureReduce(server.url, "bench-reduce", plan.reduce);
    const training = await measureTraining(
      server.url,
      "bench-train",
      plan.training,
      here("../../bin/flock.js"),
      say,
    );
    const balance = await measureBalance(plan.balance, say);
    const predict = await measurePredict(
      server.url,
      "bench-predict",
      plan.predict,
      here("../../bin/flock.js"),
      say,
    );
    info.loadAvg[1] = Number(loadavg()[0]!.toFixed(2));
    return {
      tellRatio: messaging.tellRatio,
      askLatencyRatio: messaging.askLatencyRatio,
      reduceWireRatio: reduce.reduceWireRatio,
      trainerOverheadRatio: training.trainerOverheadRatio,
      trainerOverheadRatioStale: training.trainerOverheadRatioStale,
      trainerOverheadRatioLocal: training.trainerOverheadRatioLocal,
      scaling2Local: training.scaling2Local,
      scaling2: training.scaling2,
      scaling2Strong: training.scaling2Strong,
      rawScaling2: training.rawScaling2,
      scalingEfficiency: training.scalingEfficiency,
      scaling2Heavy: training.scaling2Heavy,
      rawScaling2Heavy: training.rawScaling2Heavy,
      scalingEfficiencyHeavy: training.scalingEfficiencyHeavy,
      ...modeFigures(training),
      balanceSpeedup: balance.balanceSpeedup,
      predictScaling2: predict.predictScaling2,
      accuracy: {
        ...training.accuracy,
        balanceEqual: balance.accuracy.equal,
        balanceThroughput: balance.accuracy.throughput,
      },
      recoveryMedianS: training.recoveryMedianS,
      failoverS: training.failoverS,
      peakRssMB: training.peakRssMB,
      backend: training.backend,
      cores: info.cores,
      quick,
      wallSeconds: (performance.now() - started) / 1000,
      machine: info,
      messaging,
      reduce: { ...reduce, members: plan.reduce.members, gradientBytes: plan.reduce.gradientBytes },
      training,
      balance,
      predict,
    };
  } finally {
    await server.stop();
  }
}
