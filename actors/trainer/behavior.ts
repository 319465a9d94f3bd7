import type { ActorContext, ActorRef, Behavior, Message } from "../../runtime/actor/index.js";
import type { ParamsSlice } from "../../messages/index.js";
import { ComputeWorker } from "../compute/worker.js";
import { paramHash } from "../compute/hash.js";
import { seededPermutation } from "../compute/prng.js";
import type { JobSpec } from "../job/spec.js";
import { epochSeed, jobNames } from "../job/names.js";
import type { BatchReady } from "../loader/behavior.js";
import { ParamAssembler } from "./params.js";
import type { ParamsCopy, Prepared, StartStep, TrainerCommand } from "./protocol.js";
import type { SliceCopy } from "../reducer/protocol.js";
import type { StepDone } from "../coordinator/protocol.js";

/** What a trainer is spawned with. */
export interface TrainerArgs {
  job: string;
  spec: JobSpec;
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
}

type Msg = TrainerCommand | ParamsSlice | { type: "trainer.resume" };

interface State {
  term: number;
  coordinator?: string;
  version: number;
  attempt: number;
  params?: Float32Array;
  prev?: { version: number; params: Float32Array };
  assembler?: ParamAssembler;
  bounds?: number[];
  pendingStep?: { msg: StartStep; from: string; since: number };
}

const ASK_MS = 5_000;

/**
 * A trainer: computes gradients on its batches in a worker thread, sends slice r of each gradient
 * to reducer r, and loads the parameters the reducers publish, so every replica is identical by
 * construction. It carries no optimizer state.
 */
export function trainerBehavior(args: TrainerArgs, host: TrainerHost): Behavior<Msg, State> {
  const worker = new ComputeWorker();
  const ready = worker.init({
    model: args.spec.model as never,
    dataset: args.spec.dataset,
    backend: args.spec.backend,
    seed: args.spec.seed,
  });
  ready.then((info) => host.reportBackend(info.backend)).catch(() => undefined);
  const perms = new Map<number, Int32Array>();
  const permutation = (epoch: number, size: number) => {
    let p = perms.get(epoch);
    if (!p) {
      p = seededPermutation(size, epochSeed(args.spec.seed, epoch));
      perms.clear();
      perms.set(epoch, p);
    }
    return p;
  };

  async function setVersion(state: State, version: number, params: Float32Array): Promise<void> {
    if (state.params && state.version < version)
      state.prev = { version: state.version, params: state.params };
    state.params = params;
    state.version = version;
    loadIntoWorker(params);
  }

  /**
   * Hands parameters to the worker without waiting for its acknowledgement: the worker handles
   * requests in order, so the next gradient call sees them, and the step's critical path does not
   * pay a round trip to the thread. A failure shows up in that next call.
   */
  function loadIntoWorker(params: Float32Array): void {
    worker.setParams(params.slice(), { transfer: true }).catch(() => undefined);
  }

  async function onPrepare(
    state: State,
    msg: Extract<Msg, { type: "trainer.prepare" }>,
    ctx: ActorContext<Msg>,
  ): Promise<State> {
    const info = await ready;
    state = adoptTerm(state, msg.term, ctx.from);
    state.bounds = msg.reducers.bounds;
    state.assembler = new ParamAssembler(msg.reducers.bounds);
    if (msg.version === 0 && state.version !== 0) {
      await setVersion(state, 0, await worker.initParams(args.spec.seed));
    } else if (msg.version > 0 && state.version < msg.version) {
      // A joiner: take the newest version every reducer agrees on; later ones arrive as slices.
      const { version, params } = await fetchFromReducers(ctx, msg.reducers, msg.version, info.paramCount);
      await setVersion(state, version, params);
    }
    ctx.reply<Prepared>({
      type: "trainer.prepared",
      version: state.version,
      hash: paramHash(state.params!),
      backend: info.backend,
      device: info.device,
      paramCount: info.paramCount,
      trainSize: info.trainSize,
    });
    return state;
  }

  let unsubscribe: (() => void) | undefined;

  async function onSlice(state: State, msg: ParamsSlice, ctx: ActorContext<Msg>): Promise<State> {
    if (msg.term < state.term || !state.assembler) return state;
    const complete = state.assembler.add(msg, state.version);
    if (complete !== undefined) {
      const next = state.params!.slice();
      state.assembler.apply(complete, next);
      await setVersion(state, complete, next);
    }
    return maybeRunPending(state, ctx);
  }

  async function maybeRunPending(state: State, ctx: ActorContext<Msg>): Promise<State> {
    const pending = state.pendingStep;
    if (pending && state.version === pending.msg.step - 1) {
      state.pendingStep = undefined;
      return runStep(state, pending.msg, pending.from, ctx);
    }
    return state;
  }

  async function onStep(state: State, msg: StartStep, ctx: ActorContext<Msg>): Promise<State> {
    if (msg.term < state.term) return state;
    state = adoptTerm(state, msg.term, ctx.from);
    const from = ctx.from!;
    if (state.version >= msg.step && state.prev && state.prev.version === msg.step - 1) {
      // The step is being redone: the version it produced was rolled back on the reducers.
      state.params = state.prev.params;
      state.version = state.prev.version;
      state.prev = undefined;
      state.assembler?.dropAbove(state.version);
      loadIntoWorker(state.params);
    }
    if (state.version === msg.step - 1) return runStep(state, msg, from, ctx);
    if (state.version < msg.step - 1) {
      state.pendingStep = { msg, from, since: Date.now() };
      // If the slices never come (a reducer was replaced), fetch the version from the reducers.
      setTimeout(() => ctx.self.tell({ type: "trainer.resume" }), 2_000).unref();
      return state;
    }
    ctx.log.warn(
      { job: args.job, step: msg.step, version: state.version },
      "trainer is ahead of the step it was asked for; contributing nothing",
    );
    reportDone(ctx, from, msg);
    return state;
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
    ctx.ref(to).tell(done as Message);
  }

  async function onResume(state: State, ctx: ActorContext<Msg>): Promise<State> {
    const pending = state.pendingStep;
    if (!pending || Date.now() - pending.since < 1_900) return state;
    const info = await ready;
    try {
      const { version, params } = await fetchFromReducers(
        ctx,
        pending.msg.reducers,
        pending.msg.step - 1,
        info.paramCount,
      );
      if (version !== pending.msg.step - 1)
        throw new Error(`reducers hold version ${version}, the step needs ${pending.msg.step - 1}`);
      await setVersion(state, version, params);
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
      .ref(msg.loader)
      .ask<BatchReady>(
        { type: "loader.next", term: msg.term, n: msg.batchSize, coordinator: from } as Message,
        { timeoutMs: ASK_MS },
      );
    const batch = reply.batch;
    gotBatch(batch);
    const hash = msg.reportHash ? paramHash(state.params!) : undefined;
    if (!batch || batch.end <= batch.start) {
      reportDone(ctx, from, msg, { hash, backend: info.backend });
      return state;
    }
    const perm = permutation(batch.epoch, info.trainSize);
    const indices = Array.from(perm.subarray(batch.start, batch.end));
    const g = await worker.gradients(indices);
    const b = msg.reducers.bounds;
    msg.reducers.addresses.forEach((address, r) => {
      ctx.ref(address).tell({
        type: "reducer.grad",
        term: msg.term,
        step: msg.step,
        attempt: msg.attempt,
        member: host.nodeId,
        n: g.n,
        data: g.grad.subarray(b[r], b[r + 1]),
      } as Message);
    });
    reportDone(ctx, from, msg, {
      batch,
      n: g.n,
      lossSum: g.lossSum,
      computeMs: performance.now() - started,
      hash,
      backend: info.backend,
    });
    return state;
  }

  return {
    init(ctx) {
      unsubscribe = host.subscribe(jobNames.paramsTopic(args.job), ctx.self);
      return { term: 0, version: -1, attempt: 0 };
    },
    async receive(state, msg, ctx) {
      switch (msg.type) {
        case "trainer.prepare":
          return onPrepare(state, msg, ctx);
        case "params.slice":
          return onSlice(state, msg, ctx);
        case "trainer.step":
          return onStep(state, msg, ctx);
        case "trainer.resume":
          return onResume(state, ctx);
        case "trainer.fetch": {
          const source =
            state.version === msg.version
              ? state.params
              : state.prev?.version === msg.version
                ? state.prev.params
                : undefined;
          if (!source)
            throw new Error(
              `trainer holds versions ${state.version}/${state.prev?.version ?? "-"}, not ${msg.version}`,
            );
          ctx.reply<ParamsCopy>({
            type: "trainer.params",
            version: msg.version,
            offset: msg.offset,
            data: source.slice(msg.offset, msg.offset + msg.length),
          });
          return state;
        }
        case "trainer.prepared":
        case "trainer.params":
          return state;
        default:
          return assertNever(msg);
      }
    },
    stopped() {
      unsubscribe?.();
      void worker.close();
      host.onStopped();
    },
  };
}

function adoptTerm(state: State, term: number, from: string | undefined): State {
  if (term > state.term) return { ...state, term, coordinator: from };
  return state;
}

/** Fetches the newest parameter version (at least `atLeast`) that every reducer holds. */
async function fetchFromReducers(
  ctx: ActorContext<Message>,
  reducers: { addresses: string[]; bounds: number[] },
  atLeast: number,
  paramCount: number,
): Promise<{ version: number; params: Float32Array }> {
  let seen = "";
  for (let attempt = 0; attempt < 100; attempt++) {
    const slices = await Promise.all(
      reducers.addresses.map((a) =>
        ctx.ref(a).ask<SliceCopy>({ type: "reducer.fetch" }, { timeoutMs: ASK_MS }),
      ),
    );
    const version = slices[0].version;
    if (version >= atLeast && slices.every((s) => s.version === version)) {
      const params = new Float32Array(paramCount);
      for (const s of slices) params.set(s.data, s.offset);
      return { version, params };
    }
    seen = slices.map((s) => s.version).join(",");
    // Reducers mid-commit hold adjacent versions for a moment; ask again shortly.
    await new Promise((r) => setTimeout(r, 5 + attempt));
  }
  throw new Error(`reducers did not settle on one version ≥ ${atLeast} (last seen ${seen})`);
}

function assertNever(x: never): never {
  throw new Error(`unexpected message ${JSON.stringify(x)}`);
}
