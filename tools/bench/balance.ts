/**
 * `balanceSpeedup`: heterogeneous balancing measured on the embedded cluster (two nodes in this
 * process, trainers in worker threads), node-2's trainer slowed by a bench-only fault (an extra
 * sleep per sample of each gradient). The same MNIST job runs with `balance: "equal"` and
 * `balance: "throughput"`, interleaved, and the figure is the ratio of their steady samples/s.
 */
import { resolveJobSpec, runJob } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import type { JobEvent } from "../../messages/index.js";
import { median } from "./stats.js";

/** Sizes of the balancing measurement. */
export interface BalancePlan {
  /** Epochs of each job. */
  epochs: number;
  /** Rounds of the pair (equal, then throughput). */
  rounds: number;
  /** node-2's extra ms per sample of each gradient. */
  slowMsPerSample: number;
}

/** What the balancing measurement found. */
export interface BalanceResult {
  /** Steady samples/s with throughput shares ÷ with equal shares (medians over the rounds). */
  balanceSpeedup: number;
  globalBatch: number;
  slowMsPerSample: number;
  /** Median steady step time (ms) of each mode, pooled over the rounds. */
  stepMs: { equal: number; throughput: number };
  /** Steady samples/s of each run, per mode. */
  samplesPerSec: { equal: number[]; throughput: number[] };
  /** The slowed node's median share of a full step with throughput shares. */
  slowShare: number;
  /** Final test accuracy (median over the rounds) of each mode. */
  accuracy: { equal: number; throughput: number };
}

type StepEvent = Extract<JobEvent, { type: "job.step" }>;
type Mode = "equal" | "throughput";

const GLOBAL_BATCH = 64;
/** Steps left out at the start of a job: placement, warm-up and the shares settling. */
const WARMUP_STEPS = 20;

/** Time between consecutive commits after the warm-up (ms). */
function steadyStepMs(events: readonly StepEvent[]): number[] {
  const steady = events.filter((e) => !e.replay && e.step > WARMUP_STEPS);
  return steady.slice(1).map((e, i) => e.at - (steady[i]?.at ?? e.at));
}

/** The slowed node's share of each full steady step. */
function slowShares(events: readonly StepEvent[]): number[] {
  return events.flatMap((e) => {
    const n =
      e.step > WARMUP_STEPS && e.samples === GLOBAL_BATCH
        ? e.shares?.find((s) => s.node === "node-2")?.n
        : undefined;
    return n === undefined ? [] : [n];
  });
}

async function runMode(
  cluster: EmbeddedCluster,
  balance: Mode,
  epochs: number,
  seed: number,
): Promise<{ stepMs: number[]; shares: number[]; accuracy: number }> {
  const events: StepEvent[] = [];
  const spec = resolveJobSpec("mnist", {
    epochs,
    minWorkers: 2,
    maxWorkers: 2,
    globalBatch: GLOBAL_BATCH,
    seed,
    balance,
  });
  const result = await runJob(cluster.handle, spec, {
    onEvent: (e) => void (e.type === "job.step" && events.push(e)),
  });
  if (result.status !== "completed")
    throw new Error(`balance bench: the ${balance} job ended ${result.status}`);
  return { stepMs: steadyStepMs(events), shares: slowShares(events), accuracy: result.accuracy };
}

/** Runs the pair `plan.rounds` times on one embedded cluster with node-2 slowed. */
export async function measureBalance(plan: BalancePlan, say: (line: string) => void): Promise<BalanceResult> {
  const cluster = await EmbeddedCluster.start({
    nodes: 2,
    faults: { "node-2": { trainer: { extraMsPerSample: plan.slowMsPerSample } } },
  });
  const stepMs: Record<Mode, number[]> = { equal: [], throughput: [] };
  const rates: Record<Mode, number[]> = { equal: [], throughput: [] };
  const accuracy: Record<Mode, number[]> = { equal: [], throughput: [] };
  const shares: number[] = [];
  try {
    for (let round = 0; round < plan.rounds; round++) {
      // Interleaved, so a change in the machine's load hits both modes alike.
      for (const mode of ["equal", "throughput"] as const) {
        say(
          `balance: ${mode} shares, node-2 slowed ${plan.slowMsPerSample} ms a sample (round ${round + 1})`,
        );
        const r = await runMode(cluster, mode, plan.epochs, 21 + round);
        stepMs[mode].push(...r.stepMs);
        rates[mode].push((GLOBAL_BATCH * 1000) / median(r.stepMs));
        accuracy[mode].push(r.accuracy);
        if (mode === "throughput") shares.push(...r.shares);
      }
    }
  } finally {
    await cluster.close();
  }
  return {
    balanceSpeedup: median(rates.throughput) / median(rates.equal),
    globalBatch: GLOBAL_BATCH,
    slowMsPerSample: plan.slowMsPerSample,
    stepMs: { equal: median(stepMs.equal), throughput: median(stepMs.throughput) },
    samplesPerSec: rates,
    slowShare: median(shares),
    accuracy: { equal: median(accuracy.equal), throughput: median(accuracy.throughput) },
  };
}
