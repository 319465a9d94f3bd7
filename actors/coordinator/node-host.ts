import { systemScheduler, type Scheduler } from "../../runtime/clock.js";
import { LeaseCandidate, openLeaseBucket } from "../../runtime/cluster/lease.js";
import { openJobsBucket, putJobRecord } from "../../runtime/cluster/jobs.js";
import type { Lease, MembershipView } from "../../runtime/cluster/types.js";
import { retry } from "../../runtime/retry.js";
import { CHECKPOINTS_BUCKET, JOB_STATE_BUCKET } from "../job/names.js";
import type { JobSpec } from "../job/spec.js";
import type { TrainingNode } from "../kinds.js";
import { COORDINATOR_LEASE_MS, type CoordinatorHost } from "./host.js";
import { coordinatorBehavior, type CoordinatorMsg } from "./shell.js";
import type { Behavior } from "../../runtime/actor/index.js";

/** The coordinator host of a flock node: its lease candidate, KV buckets, bus and spawns. */
export function nodeCoordinatorHost(node: TrainingNode, job: string): CoordinatorHost {
  let candidate: LeaseCandidate | undefined;
  return {
    nodeId: node.nodeId,
    membership: node.membership,
    metrics: node.system.metrics,
    campaign(key, onAcquired, onLost) {
      let stopped = false;
      retry(() => openLeaseBucket(node.stores, COORDINATOR_LEASE_MS), {
        forMs: 60_000,
        onRetry: (err) =>
          node.system.log.warn({ job, err }, "coordinator: lease bucket not reachable yet; retrying"),
      }).then(
        (kv) => {
          if (stopped) return;
          candidate = new LeaseCandidate(kv, key, `${node.nodeId}:${node.incarnation}`, {
            ttlMs: COORDINATOR_LEASE_MS,
            isHolderDead: (holder) => holderDead(node.membership, holder),
            // Takeovers and losses of a job's lease are worth a line each (they were silent).
            log: node.system.log.child({ job, lease: key }),
          });
          candidate.onAcquired((lease: Lease) => onAcquired(lease.revision));
          candidate.onLost(onLost);
        },
        (error: Error) => onLost(`lease bucket unreachable: ${error.message}`),
      );
      return () => {
        stopped = true;
        void candidate?.stop();
      };
    },
    resign: async () => {
      await candidate?.stop();
    },
    stateKv: () => node.stores.kv(JOB_STATE_BUCKET),
    writeJobRecord: async (record) => void (await putJobRecord(await openJobsBucket(node.stores), record)),
    blobs: () => node.stores.blobs(CHECKPOINTS_BUCKET),
    publish: (topic, msg) => node.system.publish(topic, msg),
    spawnRemote: (n, kind, name, args, o) => node.system.spawnRemote(n, kind, name, args, o),
    stopRemote: (address, o) => node.system.stopRemote(address, o),
  };
}

/** The coordinator actor of `job` on a flock node (kind `flock.coordinator`). */
export function nodeCoordinator(
  node: TrainingNode,
  job: string,
  spec: JobSpec,
  scheduler: Scheduler = systemScheduler,
): Behavior<CoordinatorMsg, undefined> {
  return coordinatorBehavior(job, spec, nodeCoordinatorHost(node, job), scheduler);
}

/** A lease holder is `nodeId:incarnation`; it is gone when that incarnation is dead, left or superseded. */
function holderDead(membership: MembershipView, holder: string): boolean {
  const i = holder.lastIndexOf(":"); // node ids may hold `:`, incarnations never do
  const info = membership.get(holder.slice(0, i));
  if (!info) return false;
  return info.inc !== holder.slice(i + 1) || info.state === "dead" || info.state === "left";
}
