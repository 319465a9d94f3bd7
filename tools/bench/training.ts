import { resolveJobSpec, runJob, type ClusterHandle, type TrainResult } from "../../actors/api.js";
import { plainTrainLoop } from "../../actors/compute/baseline.js";
import type { JobSpecInput } from "../../actors/job/spec.js";
import { connectCluster } from "../../actors/remote.js";
import { Daemons } from "./daemons.js";
import { JobEvents, stepTimes, steadySamplesPerSec } from "./events.js";
import { resilienceJob } from "./resilience.js";
import { median } from "./stats.js";

/** Sizes of the training measurements. */
export interface TrainingPlan {
  /** Steps of the plain-tfjs reference loop (after a short warm-up). */
  plainSteps: number;
  /** Epochs of the one- and two-worker jobs. */
  epochs: number;
  /** SIGKILLs of a trainer's daemon in the resilience job (before the coordinator's), and its epochs. */
  kills: number;
  resilienceEpochs: number;
}

/** What the training measurements found. */
export interface TrainingResult {
  backend: string;
  plainSamplesPerSec: number;
  oneWorkerSamplesPerSec: number;
  twoWorkerSamplesPerSec: number;
  trainerOverheadRatio: number;
  scaling2: number;
  recoverySeconds: number[];
  recoveryMedianS: number;
  failoverS: number;
  peakRssMB: number;
  peakRssByNode: Record<string, number>;
  /** Time between committed steps of the one-worker job (its tail holds evaluations and checkpoints), and the plain loop's step. */
  oneWorkerStepMs: { medianMs: number; meanMs: number };
  plainStepMs: number;
  accuracy: { oneWorker: number; twoWorkers: number };
}

const EXAMPLE = "mnist";
const NODES = ["a", "b", "c"];

/**
 * MNIST training: the plain tfjs loop, then on daemons (one process per node, over the benchmark's
 * nats-server): a one-worker job, a two-worker job, a job whose trainers' daemons are SIGKILLed
 * and restarted, and a job whose coordinator's daemon is SIGKILLed.
 */
export async function measureTraining(
  url: string,
  cluster: string,
  plan: TrainingPlan,
  flockBin: string,
  say: (line: string) => void,
): Promise<TrainingResult> {
  const base = resolveJobSpec(EXAMPLE);
  say(`plain tfjs loop: ${plan.plainSteps} steps of ${base.globalBatch}`);
  const plainOpts = {
    model: base.model,
    dataset: base.dataset,
    backend: base.backend,
    batchSize: base.globalBatch,
    seed: base.seed,
    optimizer: base.optimizer,
  };
  // Warm-up as long as the part of each flock job that steadySamplesPerSec skips (JIT, wasm tier-up).
  await plainTrainLoop({ ...plainOpts, steps: 25 });
  const plain = await plainTrainLoop({ ...plainOpts, steps: plan.plainSteps });

  const daemons = new Daemons(flockBin, url, cluster);
  let client: ClusterHandle | undefined;
  try {
    say("daemons a, b");
    await Promise.all(NODES.slice(0, 2).map((id) => daemons.start(id)));
    client = await connectCluster({ servers: url, cluster });
    await waitAlive(client, NODES.slice(0, 2));

    say(`one-worker job (${plan.epochs} epoch(s))`);
    const one = await trainJob(client, { minWorkers: 1, maxWorkers: 1, epochs: plan.epochs });
    say(`two-worker job (${plan.epochs} epoch(s))`);
    const two = await trainJob(client, { minWorkers: 2, maxWorkers: 2, epochs: plan.epochs });

    say("daemon c");
    await daemons.start("c");
    await waitAlive(client, NODES);
    say(`resilience job: SIGKILL of the coordinator's daemon, then ${plan.kills} of a trainer's`);
    const { recoverySeconds, failoverS } = await resilienceJob(
      client,
      daemons,
      plan.kills,
      plan.resilienceEpochs,
    );

    const peakRssByNode = daemons.peakRssMB();
    const oneRate = steadySamplesPerSec(one.events.steps());
    const twoRate = steadySamplesPerSec(two.events.steps());
    return {
      backend:
        one.result.backend === plain.backend
          ? plain.backend
          : `${plain.backend} (plain) / ${one.result.backend} (flock)`,
      plainSamplesPerSec: plain.samplesPerSec,
      oneWorkerSamplesPerSec: oneRate,
      twoWorkerSamplesPerSec: twoRate,
      trainerOverheadRatio: oneRate / plain.samplesPerSec,
      scaling2: twoRate / oneRate,
      recoverySeconds,
      recoveryMedianS: median(recoverySeconds),
      failoverS,
      peakRssMB:
        Object.keys(peakRssByNode).length > 0 ? Math.max(...Object.values(peakRssByNode)) : Number.NaN,
      peakRssByNode,
      oneWorkerStepMs: stepTimes(one.events.steps()),
      plainStepMs: (1000 * base.globalBatch) / plain.samplesPerSec,
      accuracy: { oneWorker: one.result.accuracy, twoWorkers: two.result.accuracy },
    };
  } finally {
    await client?.close().catch(() => undefined);
    await daemons.stop();
  }
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

async function trainJob(
  client: ClusterHandle,
  overrides: Partial<JobSpecInput>,
): Promise<{ result: TrainResult; events: JobEvents }> {
  const events = new JobEvents();
  const result = await runJob(client, resolveJobSpec(EXAMPLE, overrides), { onEvent: events.push });
  if (result.status !== "completed") throw new Error(`job ended ${result.status}`);
  return { result, events };
}
