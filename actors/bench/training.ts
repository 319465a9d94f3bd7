import type { NatsConnection } from "nats";
import { readLease, openLeaseBucket } from "../../runtime/cluster/lease.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import type { NatsTransport } from "../../runtime/transport/index.js";
import { resolveJobSpec, runJob, type ClusterHandle, type TrainResult } from "../api.js";
import { plainTrainLoop } from "../compute/baseline.js";
import { jobNames } from "../job/names.js";
import type { JobSpecInput } from "../job/spec.js";
import { COORDINATOR_LEASE_MS } from "../kinds.js";
import { connectCluster } from "../remote.js";
import { Daemons } from "./daemons.js";
import { JobEndedError, JobEvents, steadySamplesPerSec } from "./events.js";
import { median } from "./stats.js";

/** Sizes of the training measurements. */
export interface TrainingPlan {
  /** Steps of the plain-tfjs reference loop (after a short warm-up). */
  plainSteps: number;
  /** Epochs of the one- and two-worker jobs. */
  epochs: number;
  /** SIGKILLs of a trainer's daemon in the recovery job, and that job's epochs. */
  kills: number;
  recoveryEpochs: number;
  /** Epochs of the failover job. */
  failoverEpochs: number;
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
    model: base.model as never,
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
    say(`recovery job: ${plan.kills} SIGKILL(s) of a trainer's daemon`);
    const recoverySeconds = await recoveryJob(client, daemons, plan);
    say("failover job: SIGKILL of the coordinator's daemon");
    const failoverS = await failoverJob(client, daemons, plan);

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

/** The node holding the job's coordinator lease (holder `<nodeId>:<incarnation>`). */
async function coordinatorNode(
  client: ClusterHandle,
  cluster: string,
  job: string,
): Promise<string | undefined> {
  const nc = (client.client.wire.transport as NatsTransport).connection as NatsConnection;
  const kv = await openLeaseBucket(new JetStreamStores(nc, { cluster }), COORDINATOR_LEASE_MS);
  const holder = (await readLease(kv, jobNames.leaseKey(job)))?.holder;
  return holder?.slice(0, holder.lastIndexOf(":"));
}

const EVENT_WAIT_MS = 30_000;

/** Waits for at least `steps` more committed steps and then until `ready()`; returns the index after the last step seen. */
async function settle(
  events: JobEvents,
  from: number,
  steps: number,
  ready: () => boolean,
  what: string,
): Promise<number> {
  const deadline = Date.now() + EVENT_WAIT_MS;
  for (let seen = 0; seen < steps || !ready(); seen++) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${EVENT_WAIT_MS} ms waiting for ${what}`);
    from = (await events.waitFor((e) => e.type === "job.step", from, left, what)).index + 1;
  }
  return from;
}

/** Kills a trainer's daemon (never the coordinator's) `plan.kills` times; each time: kill → next committed step. */
async function recoveryJob(client: ClusterHandle, daemons: Daemons, plan: TrainingPlan): Promise<number[]> {
  const spec = resolveJobSpec(EXAMPLE, { minWorkers: 1, maxWorkers: 2, epochs: plan.recoveryEpochs });
  const job = spec.id!;
  const events = new JobEvents();
  const running = runJob(client, spec, { onEvent: events.push });
  running.catch(() => undefined);
  const seconds: number[] = [];
  try {
    let from = await settle(events, 0, 1, () => true, "the first committed step");
    const coordinator = await coordinatorNode(client, client.client.cluster, job);
    const target = () => [...events.members()].sort().find((n) => n !== coordinator);
    for (let k = 0; k < plan.kills; k++) {
      // Let the job settle: a few steps since the last recovery, and a trainer to kill that is not
      // on the coordinator's node (a restarted daemon rejoins at a step boundary).
      from = await settle(
        events,
        from,
        6,
        () => target() !== undefined,
        `a trainer outside node ${coordinator}`,
      );
      const victim = target()!;
      const killedAt = Date.now();
      await daemons.kill(victim);
      const death = await events.waitFor(
        (e) => e.type === "job.membership" && e.event.kind === "death" && e.event.node === victim,
        from,
        EVENT_WAIT_MS,
        `the death of ${victim}`,
      );
      const next = await events.waitFor(
        (e) => e.type === "job.step",
        death.index + 1,
        EVENT_WAIT_MS,
        "a step after the death",
      );
      if (next.type !== "job.step") throw new Error("unreachable");
      seconds.push((next.at - killedAt) / 1000);
      from = next.index + 1;
      await daemons.start(victim);
    }
  } catch (error) {
    if (!(error instanceof JobEndedError) || seconds.length === 0) throw error;
  }
  await running;
  return seconds;
}

/** Kills the daemon of the node that holds the coordinator's lease; returns kill → first step the standby commits. */
async function failoverJob(client: ClusterHandle, daemons: Daemons, plan: TrainingPlan): Promise<number> {
  const spec = resolveJobSpec(EXAMPLE, { minWorkers: 1, maxWorkers: 2, epochs: plan.failoverEpochs });
  const job = spec.id!;
  const events = new JobEvents();
  const running = runJob(client, spec, { onEvent: events.push });
  running.catch(() => undefined);
  // Kill only once a trainer runs outside the coordinator's node, so the job has someone left.
  const from = await settle(events, 0, 10, () => events.members().size >= 2, "two trainers");
  const coordinator = await coordinatorNode(client, client.client.cluster, job);
  if (!coordinator) throw new Error(`nobody holds the lease of job ${job}`);
  const killedAt = Date.now();
  await daemons.kill(coordinator);
  // The standby records the takeover (kind failover, under its own node) or the old node's death
  // (when that node was a member), and emits the last of them with its first commit.
  const takeover = await events.waitFor(
    (e) => e.type === "job.membership" && (e.event.kind === "failover" || e.event.kind === "death"),
    from,
    EVENT_WAIT_MS,
    "the standby's takeover",
  );
  const next = await events.waitFor(
    (e) => e.type === "job.step" && e.at > killedAt,
    takeover.index + 1,
    EVENT_WAIT_MS,
    "a step committed by the standby",
  );
  if (next.type !== "job.step") throw new Error("unreachable");
  await running;
  return (next.at - killedAt) / 1000;
}
