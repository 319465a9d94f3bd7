import type { ActorContext, ActorRef, Behavior } from "../../runtime/actor/index.js";
import { systemScheduler, type Scheduler, type Timer } from "../../runtime/clock.js";
import type { Metrics } from "../../runtime/metrics.js";
import type { Failure, ParamsSlice } from "../../messages/index.js";
import { ComputeWorker } from "../compute/worker.js";
import { fetchStoredSources, type DataAccess } from "../compute/dataset-store-cache.js";
import { WorkerParams, fetchFromReducers } from "./worker-params.js";
import { paramHash } from "../compute/hash.js";
import { SampleOrder } from "../compute/dataset-stream-order.js";
import type { CoordinatorCommand, StepDone } from "../coordinator/protocol.js";
import { IgnoredMessages } from "../ignored.js";
import { sliceMismatch } from "../senders.js";
import { addressNode, termRefused, type TermCheck } from "../term-guard.js";
import type { JobSpec } from "../job/spec.js";
import { epochSeed, jobNames } from "../job/names.js";
import type { BatchReady } from "../loader/behavior.js";
import type { LoaderCommand } from "../loader/protocol.js";
import type { ReducerCommand } from "../reducer/protocol.js";
import { GradEncoder } from "./grad-codec.js";
import { SAMPLES_HELP, SAMPLES_METRIC, STEP_SECONDS_HELP, STEP_SECONDS_METRIC } from "../timings.js";
import type { FetchParams, ParamsCopy, Prepare, Prepared, StartStep, TrainerCommand } from "./protocol.js";
import { resolveInit } from "../job/init-source.js";
import { localSteps } from "../job/sync.js";
import type { BlobStore } from "../../runtime/store/types.js";
import {
  addSlice,
  adoptTerm,
  decideStep,
  initialVersions,
  neededVersion,
  RESUME_AFTER_MS,
  resumeDue,
  serveFetch,
  startPrepare,
  takeFetched,
  takeRunnable,
  type TrainerVersions,
} from "./versions.js";

/** What a trainer is spawned with. */
export interface TrainerArgs {
  job: string;
  spec: JobSpec;
}

/**
 * Faults a test or bench entry point can switch on, to make one node's trainer slower than the
 * others (heterogeneous hardware, a throttled CPU). Never set by the production daemon.
 */
export interface TrainerFaults {
  /** Extra ms each gradient computation takes (slept on the host's scheduler). */
  extraStepMs?: number;
  /** Extra ms per sample of each gradient computation: a node this much slower a sample. */
  extraMsPerSample?: number;
}

/** Services of the node that hosts the trainer. */
export interface TrainerHost {
  nodeId: string;
  /** Called once the compute backend is known (the node reports it in heartbeats). */
  reportBackend(backend: string): void;
  /** Called when the trainer stops (slot release). */
  onStopped(): void;
  /** Subscribes a local actor to a topic (idempotent per actor). */
  subscribe(topic: string, ref: ActorRef): () => void;
  /** Timers and the clock (default {@link systemScheduler}). */
  scheduler?: Scheduler;
  /** Where ignored messages are counted. */
  metrics?: Metrics;
  /** Checks coordinator terms against the job's lease (see `term-guard.ts`). */
  terms?: TermCheck;
  /** Deliberate slowness, for tests and the bench only (see {@link TrainerFaults}). */
  faults?: TrainerFaults;
  /** The object store, where a spec's `init: "job://ID"` model is read from. */
  blobs?: () => Promise<BlobStore>;
  /** The cluster's stored datasets (a `flock://` source), fetched into this node's cache. */
  data?: DataAccess;
}

/** The trainer's own timer message, never sent by anyone else (it is not in the wire registry). */
type Resume = { type: "trainer.resume" };
type Msg = TrainerCommand | ParamsSlice | Resume;
type State = TrainerVersions;

const ASK_MS = 5_000;

/**
 * A trainer: computes gradients on its batches in a worker thread, sends slice r of each gradient
 * to reducer r, and loads the parameters the reducers publish, so every replica is identical by
 * construction. It carries no optimizer state.
 */
export function trainerBehavior(args: TrainerArgs, host: TrainerHost): Behavior<Msg, State> {
  const scheduler = host.scheduler ?? systemScheduler;
  const ignored = new IgnoredMessages("trainer", host.metrics);
  const worker = new ComputeWorker();
  /** Positions → samples; a streamed dataset's shards are fetched per batch (so none up front). */
  const order = new SampleOrder(args.spec.dataset, (epoch) => epochSeed(args.spec.seed, epoch), host.data);
  const ready = Promise.all([
    resolveInit(args.spec.init, host.blobs),
    fetchStoredSources(args.spec.dataset, host.data, { streamed: "none" }),
  ]).then(([init, stored]) => {
    order.adopt(stored);
    return worker.init({
      model: args.spec.model,
      dataset: args.spec.dataset,
      backend: args.spec.backend,
      seed: args.spec.seed,
      init,
      freeze: args.spec.freeze,
      keepZeros: args.spec.keepZeros,
      task: args.spec.task,
      mlm: args.spec.mlm,
      stored,
    });
  });
  ready.then((info) => host.reportBackend(info.backend)).catch(() => undefined);
  /** Slices of each gradient for the reducers, packed with error feedback when the spec compresses. */
  const grads = new GradEncoder(args.spec.compression, host.metrics);

  const workerParams = new WorkerParams(worker);
  /** Local optimizer steps per committed step (`sync.every`; 1: one gradient per step). */
  const innerSteps = localSteps(args.spec);

  async function onPrepare(state: State, msg: Prepare, ctx: ActorContext<Msg>): Promise<State> {
    const info = await ready;
    adoptTerm(state, msg.term, ctx.from);
    reducerNodes = msg.reducers.addresses.map((a) => addressNode(a));
    const plan = startPrepare(state, msg);
    if (plan.kind === "init") {
      workerParams.hold(state, 0, await worker.initParams(args.spec.seed));
    } else if (plan.kind === "fetch") {
      const { version, params } = await fetchFromReducers(
        ctx,
        scheduler,
        msg.reducers,
        plan.atLeast,
        info.paramCount,
      );
      workerParams.hold(state, version, params);
    }
    // A prepare that cannot come to hold parameters (the reducers unreachable) fails the ask,
    // and the trainer with it (stop supervision frees its slot), as before this machine existed.
    if (!state.params) throw new Error(`trainer holds no parameters after preparing version ${msg.version}`);
    ctx.reply<Prepared>({
      type: "trainer.prepared",
      version: state.version,
      hash: paramHash(state.params),
      backend: info.backend,
      device: info.device,
      paramCount: info.paramCount,
      trainSize: info.trainSize,
    });
    return state;
  }

  let unsubscribe: (() => void) | undefined;
  let resumeTimer: Timer | undefined;
  /**
   * The node of each reducer, from the coordinator's last prepare or step (term-checked): a
   * `params.slice` for reducer r counts only from r's node, so no other node can publish
   * parameters every trainer would adopt.
   */
  let reducerNodes: readonly (string | undefined)[] = [];

  async function onSlice(state: State, msg: ParamsSlice, ctx: ActorContext<Msg>): Promise<State> {
    const mismatch = sliceMismatch(msg.r, ctx.from, reducerNodes);
    if (mismatch) {
      ignored.note(ctx.log, msg.type, mismatch, `slice ${msg.r} from ${ctx.from ?? "?"}`);
      return state;
    }
    const { completed, ignored: why } = addSlice(state, msg);
    if (why) ignored.note(ctx.log, msg.type, why);
    // Eagerly, off the next step's critical path: the next step is usually computed on the newest version.
    if (completed) workerParams.load(state.version, completed);
    return maybeRunPending(state, ctx);
  }

  async function maybeRunPending(state: State, ctx: ActorContext<Msg>): Promise<State> {
    const pending = takeRunnable(state);
    return pending ? runStep(state, pending.msg, pending.from, ctx) : state;
  }

  async function onStep(state: State, msg: StartStep, ctx: ActorContext<Msg>): Promise<State> {
    const from = ctx.from;
    if (!from) return ignore(state, ctx, msg.type, "no-reply-address");
    if (msg.term >= state.term) reducerNodes = msg.reducers.addresses.map((a) => addressNode(a));
    const decision = decideStep(state, msg, from, scheduler.now());
    switch (decision.kind) {
      case "stale":
        return ignore(state, ctx, msg.type, "stale-term");
      case "misfit":
        ignored.note(ctx.log, msg.type, "version-misfit", decision.detail);
        return state;
      case "run":
        return runStep(state, msg, from, ctx);
      case "wait":
        // If the slices never come (a reducer was replaced), fetch the version from the reducers.
        resumeTimer?.cancel();
        resumeTimer = scheduler.after(RESUME_AFTER_MS, () => ctx.self.tell({ type: "trainer.resume" }));
        return state;
      case "ahead":
        ctx.log.warn(
          { job: args.job, step: msg.step, version: state.version },
          "trainer is ahead of the step it was asked for; contributing nothing",
        );
        reportDone(ctx, from, msg);
        return state;
    }
  }

  /** Tells the coordinator this member's part of a step: `part` defaults to "no samples". */
  function reportDone(
    ctx: ActorContext<Msg>,
    to: string,
    msg: StartStep,
    part: Partial<StepDone> = {},
  ): void {
    const done: StepDone = {
      type: "coord.done",
      term: msg.term,
      step: msg.step,
      attempt: msg.attempt,
      member: host.nodeId,
      batch: null,
      n: 0,
      lossSum: 0,
      computeMs: 0,
      ...part,
    };
    ctx.ref<CoordinatorCommand>(to).tell(done);
  }

  async function onResume(state: State, ctx: ActorContext<Msg>): Promise<State> {
    const pending = resumeDue(state, scheduler.now());
    if (!pending) return state;
    const info = await ready;
    try {
      const atLeast = neededVersion(pending.msg);
      const { version, params } = await fetchFromReducers(
        ctx,
        scheduler,
        pending.msg.reducers,
        atLeast,
        info.paramCount,
      );
      const problem = takeFetched(state, pending, version, params);
      if (problem) throw new Error(problem);
      workerParams.load(version, params);
    } catch (error) {
      ctx.log.warn(
        { job: args.job, err: error },
        "could not fetch parameters from the reducers; waiting for the next step",
      );
      state.pendingStep = undefined;
      return state;
    }
    return maybeRunPending(state, ctx);
  }

  function onFetch(state: State, msg: FetchParams, ctx: ActorContext<Msg>): State {
    const copy = serveFetch(state, msg);
    if (typeof copy !== "string") {
      ctx.reply<ParamsCopy>(copy);
      return state;
    }
    // Refused, not thrown: the coordinator tries another trainer, and this one keeps training.
    ignored.note(ctx.log, msg.type, "version-not-held", copy);
    if (ctx.isAsk) ctx.reply<Failure>({ type: "sys.failure", code: "bad-input", message: copy });
    return state;
  }

  function ignore(state: State, ctx: ActorContext<Msg>, type: string, reason: string): State {
    ignored.note(ctx.log, type, reason);
    return state;
  }

  /**
   * Computes a step. A failure here (the loader or the coordinator unreachable for a moment, a
   * worker error) costs this member its part of the step, not its life: it reports the batch (if it
   * got one) with no samples, so the coordinator returns the batch to the pool.
   */
  async function runStep(state: State, msg: StartStep, from: string, ctx: ActorContext<Msg>): Promise<State> {
    let batch: BatchReady["batch"] = null;
    try {
      return await computeStep(state, msg, from, ctx, (b) => (batch = b));
    } catch (error) {
      ctx.log.warn(
        { job: args.job, step: msg.step, err: error },
        "trainer could not compute its part of the step",
      );
      reportDone(ctx, from, msg, { batch });
      return state;
    }
  }

  async function computeStep(
    state: State,
    msg: StartStep,
    from: string,
    ctx: ActorContext<Msg>,
    gotBatch: (b: BatchReady["batch"]) => void,
  ): Promise<State> {
    const info = await ready;
    const started = performance.now();
    const reply = await ctx
      .ref<LoaderCommand>(msg.loader)
      .ask<BatchReady>(
        { type: "loader.next", term: msg.term, n: msg.batchSize, coordinator: from },
        { timeoutMs: ASK_MS },
      );
    const batch = reply.batch;
    gotBatch(batch);
    const onParams = workerParams.ensure(state, neededVersion(msg));
    const hash = msg.reportHash ? paramHash(onParams) : undefined;
    if (!batch || batch.end <= batch.start) {
      reportDone(ctx, from, msg, { hash, backend: info.backend });
      return state;
    }
    const indices = order.indices(batch, info.trainSize);
    await order.prepare(batch, indices, info.trainSize); // a streamed batch's shards, into the node's cache
    const g =
      innerSteps > 1
        ? await worker.localSteps(indices, innerSteps, args.spec.optimizer, msg.step)
        : await worker.gradients(indices, msg.step); // the step chooses task mlm's masks
    const extraMs = (host.faults?.extraStepMs ?? 0) + (host.faults?.extraMsPerSample ?? 0) * g.n;
    if (extraMs > 0) await scheduler.sleep(extraMs);
    for (const { address, data } of grads.encode(msg.step, g.grad, msg.reducers)) {
      ctx.ref<ReducerCommand>(address).tell({
        type: "reducer.grad",
        term: msg.term,
        step: msg.step,
        attempt: msg.attempt,
        member: host.nodeId,
        n: g.n,
        data,
      });
    }
    const computeMs = performance.now() - started;
    host.metrics?.observe(STEP_SECONDS_METRIC, computeMs / 1000, {}, STEP_SECONDS_HELP);
    host.metrics?.inc(SAMPLES_METRIC, {}, g.n, SAMPLES_HELP);
    reportDone(ctx, from, msg, {
      batch,
      n: g.n,
      lossSum: g.lossSum,
      computeMs,
      hash,
      backend: info.backend,
    });
    return state;
  }

  return {
    init(ctx) {
      unsubscribe = host.subscribe(jobNames.paramsTopic(args.job), ctx.self);
      return initialVersions(2 + args.spec.sync.staleness);
    },
    async receive(state, msg, ctx) {
      const type = msg.type;
      switch (msg.type) {
        case "trainer.prepare":
          if (await termRefused(host.terms, ctx, ignored, msg)) return state;
          return onPrepare(state, msg, ctx);
        case "params.slice":
          return onSlice(state, msg, ctx);
        case "trainer.step":
          if (await termRefused(host.terms, ctx, ignored, msg)) return state;
          return onStep(state, msg, ctx);
        case "trainer.resume":
          return onResume(state, ctx);
        case "trainer.fetch":
          return onFetch(state, msg, ctx);
        case "trainer.prepared":
        case "trainer.params":
          ignored.unhandled(ctx, type, "reply-type");
          return state;
        default: {
          const unreachable: never = msg;
          void unreachable;
          ignored.unhandled(ctx, type, "unknown-type");
          return state;
        }
      }
    },
    stopped() {
      resumeTimer?.cancel();
      unsubscribe?.();
      void worker.close();
      host.onStopped();
    },
  };
}
