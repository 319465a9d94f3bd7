import type { NatsConnection } from "nats";
import { openLeaseBucket, readLease } from "../../runtime/cluster/lease.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import type { NatsTransport } from "../../runtime/transport/index.js";
import { resolveJobSpec, runJob, type ClusterHandle } from "../../actors/api.js";
import { jobNames } from "../../actors/job/names.js";
import { COORDINATOR_LEASE_MS } from "../../actors/kinds.js";
import type { Daemons } from "./daemons.js";
import { JobEndedError, JobEvents } from "./events.js";
import type { JobEvent } from "../../messages/index.js";
import { recoveryFromKill, type KillTime } from "../report/recovery.js";

/** What the resilience job measured. */
export interface ResilienceResult {
  /** SIGKILL of a trainer's daemon → the first step committed after its death was recorded, per kill. */
  recoverySeconds: number[];
  /** SIGKILL of a trainer's daemon → the coordinator's record of its death, per kill (part of recoverySeconds). */
  detectionSeconds: number[];
  /** SIGKILL of the coordinator's daemon → the first step the standby committed. */
  failoverS: number;
  /** SIGKILL of the coordinator's daemon → the standby's record of the takeover (or of the death). */
  failoverDetectionS: number;
}

const EVENT_WAIT_MS = 30_000;

/**
 * One MNIST job on three daemons, a trainer on each. First SIGKILL the daemon named in the
 * coordinator's lease and time kill → the standby's first commit; then, `kills` times, SIGKILL the
 * daemon of a trainer that is not on the (new) coordinator's node and time kill → the next committed
 * step. Every killed daemon is restarted (a new incarnation) and each kill waits until all three
 * nodes train again: a kill while a restarted node is still being taken in would measure two faults
 * at once. The job then runs to its end.
 */
export async function resilienceJob(
  client: ClusterHandle,
  daemons: Daemons,
  kills: number,
  epochs: number,
): Promise<ResilienceResult> {
  const spec = resolveJobSpec("mnist", { minWorkers: 1, maxWorkers: 3, epochs });
  const job = spec.id!;
  const events = new JobEvents();
  const running = runJob(client, spec, { onEvent: events.push });
  running.catch(() => undefined);
  try {
    // Each kill waits until every node trains: the three at the start, each killed one rejoined since.
    const killedAtIndex = new Map<string, number>();
    const allTrain = () =>
      events.members().size === 3 &&
      [...killedAtIndex].every(([node, index]) =>
        events.all.some(
          (e, i) =>
            i > index && e.type === "job.membership" && e.event.kind === "join" && e.event.node === node,
        ),
      );
    let from = await settle(events, 0, 1, () => true, "the first committed step");
    const first = await coordinatorNode(client, job);
    if (!first) throw new Error(`nobody holds the lease of job ${job}`);
    from = await settle(events, from, 8, allTrain, "three trainers");
    let killedAt = Date.now();
    killedAtIndex.set(first, events.all.length - 1);
    await daemons.kill(first);
    // The standby records the takeover (kind failover, under its own node) or the old node's death
    // (when that node hosted a trainer), and emits the last of them with its first commit.
    const takeover = await events.waitFor(
      (e) => e.type === "job.membership" && (e.event.kind === "failover" || e.event.kind === "death"),
      from,
      EVENT_WAIT_MS,
      "the standby's takeover",
    );
    let next = await events.waitFor(
      (e) => e.type === "job.step" && e.at > killedAt,
      takeover.index + 1,
      EVENT_WAIT_MS,
      "a step committed by the standby",
    );
    if (next.type !== "job.step") throw new Error("unreachable");
    const failoverS = (next.at - killedAt) / 1000;
    const failoverDetectionS = detectionOf({ node: first, at: killedAt }, takeover);
    from = next.index + 1;
    await daemons.start(first);

    const coordinator = await coordinatorNode(client, job);
    const victims = [...new Set([...events.members(), first])].filter((n) => n !== coordinator).sort();
    const recoverySeconds: number[] = [];
    const detectionSeconds: number[] = [];
    for (let k = 0; k < kills; k++) {
      from = await settle(events, from, 6, allTrain, "three trainers again");
      const node = victims[k % victims.length]!;
      killedAt = Date.now();
      killedAtIndex.set(node, events.all.length - 1);
      await daemons.kill(node);
      const death = await events.waitFor(
        (e) => e.type === "job.membership" && e.event.kind === "death" && e.event.node === node,
        from,
        EVENT_WAIT_MS,
        `the death of ${node}`,
      );
      next = await events.waitFor(
        (e) => e.type === "job.step",
        death.index + 1,
        EVENT_WAIT_MS,
        "a step after the death",
      );
      if (next.type !== "job.step") throw new Error("unreachable");
      recoverySeconds.push((next.at - killedAt) / 1000);
      detectionSeconds.push(detectionOf({ node, at: killedAt }, death));
      from = next.index + 1;
      await daemons.start(node);
    }
    await running;
    return { recoverySeconds, detectionSeconds, failoverS, failoverDetectionS };
  } catch (error) {
    const why =
      error instanceof JobEndedError
        ? `the resilience job was too short for a failover and ${kills} kills (raise its epochs): `
        : "";
    throw new Error(`${why}${(error as Error).message}\n${daemons.tails()}`, { cause: error });
  }
}

/** Seconds from a kill to the membership record it caused (a death or a takeover). */
function detectionOf(kill: KillTime, e: JobEvent): number {
  if (e.type !== "job.membership") throw new Error(`expected a membership event, got ${e.type}`);
  return (
    recoveryFromKill(kill, [{ kind: e.event.kind, node: e.event.node, at: e.at }]).detectionSeconds ??
    Number.NaN
  );
}

/** Waits for at least `steps` more committed steps, then until `ready()`; returns the index after the last step seen. */
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

/** The node holding the job's coordinator lease (holder `<nodeId>:<incarnation>`). */
async function coordinatorNode(client: ClusterHandle, job: string): Promise<string | undefined> {
  const nc = (client.client.wire.transport as NatsTransport).connection as NatsConnection;
  const kv = await openLeaseBucket(
    new JetStreamStores(nc, { cluster: client.client.cluster }),
    COORDINATOR_LEASE_MS,
  );
  const holder = (await readLease(kv, jobNames.leaseKey(job)))?.holder;
  return holder?.slice(0, holder.lastIndexOf(":"));
}
