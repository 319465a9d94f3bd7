import { z } from "zod";
import { TRAINING_SHARED_MESSAGES } from "../messages/index.js";
import { openLeaseBucket } from "../runtime/cluster/lease.js";
import { ActorExistsError } from "../runtime/actor/index.js";
import { retry } from "../runtime/retry.js";
import type { FlockNode } from "../runtime/daemon/types.js";
import { systemScheduler, type Scheduler } from "../runtime/clock.js";
import { COORDINATOR_LEASE_MS } from "./coordinator/host.js";
import { nodeCoordinator } from "./coordinator/node-host.js";
import { CoordinatorCommand, CoordinatorStatus, Leased } from "./coordinator/protocol.js";
import { evaluatorBehavior } from "./evaluator/behavior.js";
import { EvaluatorCommand } from "./evaluator/protocol.js";
import { orphanWatcherBehavior, type OrphanWatcherHost } from "./job/orphan-watcher.js";
import { openJobsBucket } from "../runtime/cluster/jobs.js";
import { janitorBehavior, type JanitorHost } from "./job/janitor.js";
import { JobSpec } from "./job/spec.js";
import { dataAccess } from "./compute/dataset-store-cache.js";
import { dataCheckBehavior } from "./data-check/behavior.js";
import { DATA_CHECK_ACTOR, DATA_CHECK_MESSAGES } from "./data-check/protocol.js";
import { DATASETS_BUCKET } from "./compute/dataset-store.js";
import { checkSavedModelDir } from "./compute/saved-model.js";
import { CHECKPOINTS_BUCKET, JOB_STATE_BUCKET, jobNames } from "./job/names.js";
import { loaderBehavior } from "./loader/behavior.js";
import { LoaderCommand } from "./loader/protocol.js";
import { reducerBehavior } from "./reducer/behavior.js";
import type { ReducerFaults } from "./reducer/machine.js";
import { ReducerCommand } from "./reducer/protocol.js";
import { registerPredictorKind } from "./predictor/kind.js";
import { leaseTermCheck } from "./term-guard.js";
import { trainerBehavior, type TrainerFaults } from "./trainer/behavior.js";
import { TrainerCommand } from "./trainer/protocol.js";

/** The slice of a flock node the training actors use. */
export type TrainingNode = Pick<
  FlockNode,
  "nodeId" | "incarnation" | "cluster" | "system" | "membership" | "stores" | "backend" | "slots"
>;

export { COORDINATOR_LEASE_MS };

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
  ...DATA_CHECK_MESSAGES,
];

const JobArgs = z.strictObject({ job: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), spec: JobSpec });

/** Options of {@link setupNode}. */
export interface SetupOptions {
  /** Timers and the clock of the training actors (default {@link systemScheduler}). */
  scheduler?: Scheduler;
  /**
   * Deliberate faults, for the chaos harness's own tests: only a test entry point sets them
   * (`tools/chaos/faulty-daemon.ts`); the production daemon (`bin/flock.ts`) cannot.
   */
  faults?: { reducer?: ReducerFaults; trainer?: TrainerFaults };
  /** How long ended jobs' records and checkpoints are kept (default 7 days; see `job/janitor.ts`). */
  jobRetentionMs?: number;
  /** Bound of the node's shard cache in bytes (default `DEFAULT_CACHE_BYTES`, 2 GiB). */
  dataCacheBytes?: number;
}

/**
 * Registers the actor kinds every flock node hosts: coordinator, trainer, data loader, reducer and
 * evaluator. Remote nodes spawn them by name with checked arguments; no code travels. Also starts
 * this incarnation's orphan watcher (`actors/job/orphan-watcher.ts`), which adopts running jobs
 * that no live coordinator holds: setup runs again after every rejoin, so a re-incarnated node
 * looks for orphans too.
 */
export function setupNode(node: TrainingNode, options: SetupOptions = {}): void {
  const system = node.system;
  const scheduler = options.scheduler ?? systemScheduler;
  system.registry.register(...TRAINING_MESSAGES);
  // Create the job buckets now rather than at a job's first checkpoint, where several reducers
  // creating one bucket at once race (nats-server 2.9 answers all but one with a timeout).
  void retry(
    async () => {
      await node.stores.kv(JOB_STATE_BUCKET);
      await node.stores.blobs(CHECKPOINTS_BUCKET);
      await openLeaseBucket(node.stores, COORDINATOR_LEASE_MS);
      // Last, so a server config from before datasets (no permission) delays none of the above; it
      // exists once a daemon ran, so readers (the observer's `flock data ls`) need not create it.
      await node.stores.blobs(DATASETS_BUCKET);
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
          scheduler,
          metrics: system.metrics,
          terms: leaseTermCheck(node.stores, job, scheduler),
          faults: options.faults?.trainer,
          blobs: () => node.stores.blobs(CHECKPOINTS_BUCKET),
          data: dataAccess(node.stores, undefined, options.dataCacheBytes),
        },
      );
    },
  });

  system.registerKind("flock.loader", {
    args: z.strictObject({ job: z.string(), prefetch: z.number().int().min(1).max(64) }),
    create: (args) =>
      loaderBehavior(args, node.nodeId, system.metrics, leaseTermCheck(node.stores, args.job, scheduler)),
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
        scheduler,
        metrics: system.metrics,
        terms: leaseTermCheck(node.stores, args.job, scheduler),
        faults: options.faults?.reducer,
      }),
  });

  system.registerKind("flock.evaluator", {
    args: JobArgs,
    create: (args) =>
      evaluatorBehavior(args, {
        scheduler,
        metrics: system.metrics,
        terms: leaseTermCheck(node.stores, args.job, scheduler),
        blobs: () => node.stores.blobs(CHECKPOINTS_BUCKET),
        data: dataAccess(node.stores, undefined, options.dataCacheBytes),
      }),
  });

  system.registerKind("flock.coordinator", {
    args: JobArgs,
    // A coordinator that crashes stops and resigns: its standby takes over from the persisted state.
    supervision: { strategy: "stop" },
    create: ({ job, spec }) => {
      // The coordinator reads no data: its trainers and evaluator go to nodes whose data check
      // found the job's file:// data (`coordinator/data-checks.ts`), so a node without the files
      // may coordinate. A stored (flock://) dataset is checked complete by the submitter and
      // fetched, verified, by every trainer and evaluator as it starts.
      // A saved model to start from that this node cannot read refuses the spawn.
      if (spec.init?.startsWith("file://")) checkSavedModelDir(spec.init);
      return nodeCoordinator(node, job, spec, scheduler);
    },
  });

  registerPredictorKind(system, node.nodeId, scheduler);

  system.spawn(dataCheckBehavior(undefined, system.metrics), { name: DATA_CHECK_ACTOR });

  system.spawn(orphanWatcherBehavior(orphanHost(node, scheduler), { scheduler }), {
    name: "orphan-watcher",
    supervision: { strategy: "stop" },
  });
  system.spawn(janitorBehavior(janitorHost(node), { scheduler, retentionMs: options.jobRetentionMs }), {
    name: "job-janitor",
    supervision: { strategy: "stop" },
  });
}

/** The janitor's view of this incarnation: the job buckets, the checkpoint store, the live nodes. */
function janitorHost(node: TrainingNode): JanitorHost {
  return {
    nodeId: node.nodeId,
    aliveNodes: () => node.membership.alive().map((n) => n.node),
    stateKv: () => node.stores.kv(JOB_STATE_BUCKET),
    jobsKv: () => openJobsBucket(node.stores),
    leaseKv: () => openLeaseBucket(node.stores, COORDINATOR_LEASE_MS),
    blobs: () => node.stores.blobs(CHECKPOINTS_BUCKET),
    metrics: node.system.metrics,
    log: node.system.log,
  };
}

/** The orphan watcher's view of this incarnation: its system, the job buckets, local coordinator spawns. */
function orphanHost(node: TrainingNode, scheduler: Scheduler): OrphanWatcherHost {
  const system = node.system; // this incarnation's: the watcher stops with it
  return {
    nodeId: node.nodeId,
    membership: node.membership,
    stateKv: () => node.stores.kv(JOB_STATE_BUCKET),
    leaseKv: () => openLeaseBucket(node.stores, COORDINATOR_LEASE_MS),
    hasCoordinator: (job) => system.has(jobNames.coordinator(job)),
    spawnCoordinator: async (job, spec) => {
      const name = jobNames.coordinator(job);
      // Checked before the behaviour is built, as the system service does for a remote spawn.
      if (system.has(name)) return Promise.resolve();
      try {
        // The same actor a remote `flock.coordinator` spawn creates, with the same supervision.
        system.spawn(nodeCoordinator(node, job, spec, scheduler), {
          name,
          supervision: { strategy: "stop" },
        });
      } catch (error) {
        if (!(error instanceof ActorExistsError)) throw error;
      }
      return Promise.resolve();
    },
    metrics: system.metrics,
    log: system.log,
  };
}
