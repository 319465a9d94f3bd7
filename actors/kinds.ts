import { z } from "zod";
import { TRAINING_SHARED_MESSAGES } from "../messages/index.js";
import type { ActorSystem, Behavior } from "../runtime/actor/index.js";
import { LeaseCandidate, openLeaseBucket } from "../runtime/cluster/lease.js";
import { retry } from "../runtime/retry.js";
import type { Lease, MembershipView } from "../runtime/cluster/types.js";
import type { StoreProvider } from "../runtime/store/types.js";
import { Coordinator, type CoordinatorMsg } from "./coordinator/coordinator.js";
import type { CoordinatorHost, JobRecord } from "./coordinator/host.js";
import { CoordinatorCommand, CoordinatorStatus, Leased } from "./coordinator/protocol.js";
import { evaluatorBehavior } from "./evaluator/behavior.js";
import { EvaluatorCommand } from "./evaluator/protocol.js";
import { JobSpec } from "./job/spec.js";
import { CHECKPOINTS_BUCKET, JOB_STATE_BUCKET } from "./job/names.js";
import { loaderBehavior } from "./loader/behavior.js";
import { LoaderCommand } from "./loader/protocol.js";
import { reducerBehavior } from "./reducer/behavior.js";
import { ReducerCommand } from "./reducer/protocol.js";
import { trainerBehavior } from "./trainer/behavior.js";
import { TrainerCommand } from "./trainer/protocol.js";
import { openJobsBucket, putJobRecord } from "../runtime/cluster/jobs.js";

/** The slice of a flock node the training actors use. */
export interface TrainingNode {
  readonly nodeId: string;
  readonly incarnation: string;
  readonly cluster: string;
  readonly system: ActorSystem;
  readonly membership: MembershipView;
  readonly stores: StoreProvider;
  backend: string | undefined;
  readonly slots: { reserve(owner: string, n?: number): boolean; release(owner: string): void };
}

/** Lease TTL of job coordinators: a standby takes over this long after the holder stops renewing (sooner when its node is seen dead). */
export const COORDINATOR_LEASE_MS = 3_000;

/** Every message schema the training actors exchange. */
export const TRAINING_MESSAGES = [
  ...TRAINING_SHARED_MESSAGES,
  CoordinatorCommand,
  CoordinatorStatus,
  Leased,
  TrainerCommand,
  ReducerCommand,
  LoaderCommand,
  EvaluatorCommand,
];

const JobArgs = z.strictObject({ job: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), spec: JobSpec });

/**
 * Registers the actor kinds every flock node hosts: coordinator, trainer, data loader, reducer and
 * evaluator. Remote nodes spawn them by name with checked arguments; no code travels.
 */
export function setupNode(node: TrainingNode): void {
  const system = node.system;
  system.registry.register(...TRAINING_MESSAGES);
  // Create the job buckets now rather than at a job's first checkpoint, where several reducers
  // creating one bucket at once race (nats-server 2.9 answers all but one with a timeout).
  void retry(
    async () => {
      await node.stores.kv(JOB_STATE_BUCKET);
      await node.stores.blobs(CHECKPOINTS_BUCKET);
      await openLeaseBucket(node.stores, COORDINATOR_LEASE_MS);
    },
    { forMs: 60_000, delayMs: 200 + Math.floor(Math.random() * 300) },
  ).catch((err: Error) =>
    system.log.warn({ err }, "job buckets not created yet; they are created on first use"),
  );

  system.registerKind("flock.trainer", {
    args: JobArgs,
    supervision: { strategy: "stop" },
    create: ({ job, spec }) => {
      const owner = `trainer:${job}`;
      if (!node.slots.reserve(owner))
        throw new Error(`node ${node.nodeId} has no free slot for a trainer of job ${job}`);
      return trainerBehavior(
        { job, spec },
        {
          nodeId: node.nodeId,
          reportBackend: (b) => (node.backend = b),
          onStopped: () => node.slots.release(owner),
          subscribe: (topic, ref) => system.subscribeTopic(topic, ref),
        },
      );
    },
  });

  system.registerKind("flock.loader", {
    args: z.strictObject({ job: z.string(), prefetch: z.number().int().min(1).max(64) }),
    create: (args) => loaderBehavior(args, node.nodeId),
  });

  system.registerKind("flock.reducer", {
    args: z.strictObject({
      job: z.string(),
      r: z.number().int().min(0),
      offset: z.number().int().min(0),
      length: z.number().int().min(1),
      spec: JobSpec,
    }),
    supervision: { strategy: "stop" },
    create: (args) =>
      reducerBehavior(args, {
        publish: (topic, msg) => system.publish(topic, msg),
        blobs: () => node.stores.blobs(CHECKPOINTS_BUCKET),
      }),
  });

  system.registerKind("flock.evaluator", {
    args: JobArgs,
    create: (args) => evaluatorBehavior(args),
  });

  system.registerKind("flock.coordinator", {
    args: JobArgs,
    // A coordinator that crashes stops and resigns: its standby takes over from the persisted state.
    supervision: { strategy: "stop" },
    create: ({ job, spec }) => coordinatorBehavior(node, job, spec),
  });
}

function coordinatorBehavior(
  node: TrainingNode,
  job: string,
  spec: JobSpec,
): Behavior<CoordinatorMsg, undefined> {
  let candidate: LeaseCandidate | undefined;
  const host: CoordinatorHost = {
    nodeId: node.nodeId,
    membership: node.membership,
    campaign(key, onAcquired, onLost) {
      let stopped = false;
      void retry(() => openLeaseBucket(node.stores, COORDINATOR_LEASE_MS), {
        forMs: 60_000,
        onRetry: (err) =>
          node.system.log.warn({ job, err }, "coordinator: lease bucket not reachable yet; retrying"),
      }).then(
        (kv) => {
          if (stopped) return;
          candidate = new LeaseCandidate(kv, key, `${node.nodeId}:${node.incarnation}`, {
            ttlMs: COORDINATOR_LEASE_MS,
            isHolderDead: (holder) => holderDead(node.membership, holder),
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
    writeJobRecord: async (record: JobRecord) =>
      void (await putJobRecord(await openJobsBucket(node.stores), record)),
    publish: (topic, msg) => node.system.publish(topic, msg),
    spawnRemote: (n, kind, name, args, o) => node.system.spawnRemote(n, kind, name, args, o),
    stopRemote: (address, o) => node.system.stopRemote(address, o),
  };
  const coordinator = new Coordinator(job, spec, host);
  let tick: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  return {
    init(ctx) {
      tick = setInterval(() => ctx.self.tell({ type: "coord.tick" }), 200);
      tick.unref();
      unsubscribe = node.membership.subscribe((event) =>
        ctx.self.tell({ type: "coord.membership", event } as never),
      );
      coordinator.start(ctx);
      return undefined;
    },
    receive(_state, msg, ctx) {
      coordinator.handle(msg, ctx);
    },
    stopped() {
      clearInterval(tick);
      unsubscribe?.();
      coordinator.stop();
    },
  };
}

/** A lease holder is `nodeId:incarnation`; it is gone when that incarnation is dead, left or superseded. */
function holderDead(membership: MembershipView, holder: string): boolean {
  const i = holder.indexOf(":");
  const info = membership.get(holder.slice(0, i));
  if (!info) return false;
  return info.inc !== holder.slice(i + 1) || info.state === "dead" || info.state === "left";
}
