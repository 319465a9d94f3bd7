import { Packr } from "msgpackr";
import type { ActorContext, Behavior, Message } from "../../runtime/actor/index.js";
import type { BlobStore } from "../../runtime/store/types.js";
import type { ParamsSlice } from "../../messages/index.js";
import { createOptimizer, type Optimizer, type OptimizerState } from "../compute/optimizer.js";
import type { JobSpec } from "../job/spec.js";
import { jobNames } from "../job/names.js";
import type { ReducerCommand } from "./protocol.js";
import { injectedBug } from "../bugs.js";

/** What a reducer is spawned with: which slice of the parameter vector it owns. */
export interface ReducerArgs {
  job: string;
  r: number;
  offset: number;
  length: number;
  spec: JobSpec;
}

/** Services of the node that hosts the reducer. */
export interface ReducerHost {
  publish<M extends Message>(topic: string, msg: M): void;
  blobs(): Promise<BlobStore>;
}

interface Contribution {
  n: number;
  data: Float32Array;
}

interface State {
  term: number;
  version: number;
  attempt: number;
  params?: Float32Array;
  optimizer: Optimizer;
  /** The state before the last applied step, so an aborted step can be rolled back. */
  undo?: { version: number; attempt: number; params: Float32Array; optimizer: OptimizerState };
  /** Gradient slices by `step.attempt`, then by member. */
  buffers: Map<string, Map<string, Contribution>>;
  lastSummed: { members: string[]; n: number };
  waiting?: {
    step: number;
    attempt: number;
    contributors: string[];
    total: number;
    from: string;
    since: number;
  };
}

type Msg = ReducerCommand | { type: "reducer.retry" };

/** How long a commit waits for slices still on the wire before it reports them missing. */
const MISSING_AFTER_MS = 1_500;
const packr = new Packr({ useRecords: false, moreTypes: true });

/**
 * A reducer: one shard of the parameter server. It owns slice r of the parameters and of the
 * optimizer state, sums the slices of a step's commit set in sorted member order (bit-identical
 * whatever the arrival order), divides by the sample count, applies the optimizer and publishes
 * the new slice once. Its optimizer state is recoverable from checkpoints in the blob store
 * (written every `checkpointEvery` steps); its parameters are on every trainer.
 */
export function reducerBehavior(args: ReducerArgs, host: ReducerHost): Behavior<Msg, State> {
  const key = (step: number, attempt: number) => `${step}.${attempt}`;

  function onGrad(state: State, msg: Extract<Msg, { type: "reducer.grad" }>, ctx: ActorContext<Msg>): State {
    if (msg.step <= state.version || msg.data.length !== args.length) return state;
    const k = key(msg.step, msg.attempt);
    let buf = state.buffers.get(k);
    if (!buf) state.buffers.set(k, (buf = new Map()));
    buf.set(msg.member, { n: msg.n, data: msg.data });
    if (state.waiting && state.waiting.step === msg.step && state.waiting.attempt === msg.attempt)
      return tryApply(state, ctx);
    return state;
  }

  function onCommit(
    state: State,
    msg: Extract<Msg, { type: "reducer.commit" }>,
    ctx: ActorContext<Msg>,
  ): State {
    if (msg.term < state.term) return state;
    state.term = msg.term;
    const from = ctx.from!;
    if (msg.step === state.version && msg.attempt === state.attempt) {
      publish(state); // idempotent: a new coordinator re-sent a commit this reducer already applied
      ctx.ref(from).tell({
        type: "coord.applied",
        term: msg.term,
        step: msg.step,
        attempt: msg.attempt,
        r: args.r,
        summed: state.lastSummed.members,
        n: state.lastSummed.n,
      } as Message);
      return state;
    }
    if (msg.step !== state.version + 1) {
      ctx.ref(from).tell({
        type: "coord.missing",
        term: msg.term,
        step: msg.step,
        attempt: msg.attempt,
        r: args.r,
        members: [],
        reason: `reducer holds version ${state.version}`,
      } as Message);
      return state;
    }
    state.waiting = {
      step: msg.step,
      attempt: msg.attempt,
      contributors: [...msg.contributors].sort(),
      total: msg.total,
      from,
      since: Date.now(),
    };
    return tryApply(state, ctx);
  }

  function tryApply(state: State, ctx: ActorContext<Msg>): State {
    const w = state.waiting!;
    const buf = state.buffers.get(key(w.step, w.attempt)) ?? new Map<string, Contribution>();
    const missing = w.contributors.filter((m) => !buf.has(m));
    if (missing.length > 0) {
      if (Date.now() - w.since < MISSING_AFTER_MS) {
        setTimeout(() => ctx.self.tell({ type: "reducer.retry" }), 25).unref();
        return state;
      }
      state.waiting = undefined;
      ctx.ref(w.from).tell({
        type: "coord.missing",
        term: state.term,
        step: w.step,
        attempt: w.attempt,
        r: args.r,
        members: missing,
        reason: "slices never arrived",
      } as Message);
      return state;
    }
    const params = state.params!;
    state.undo = {
      version: state.version,
      attempt: state.attempt,
      params: params.slice(),
      optimizer: state.optimizer.exportState(),
    };
    const sum = new Float32Array(args.length);
    // The bug a chaos test injects on purpose: summing every buffered slice, the dead and the left-out too.
    const summed = injectedBug("reducer-keeps-dead-slices") ? [...buf.keys()].sort() : w.contributors;
    let n = 0;
    for (const member of summed) {
      const { data, n: count } = buf.get(member)!;
      n += count;
      for (let i = 0; i < sum.length; i++) sum[i] += data[i];
    }
    state.lastSummed = { members: summed, n };
    if (w.total > 0) state.optimizer.step(params, sum, 1 / w.total);
    state.version = w.step;
    state.attempt = w.attempt;
    state.waiting = undefined;
    for (const k of [...state.buffers.keys()]) if (Number(k.split(".")[0]) <= w.step) state.buffers.delete(k);
    publish(state);
    ctx.ref(w.from).tell({
      type: "coord.applied",
      term: state.term,
      step: w.step,
      attempt: w.attempt,
      r: args.r,
      summed,
      n,
    } as Message);
    return state;
  }

  function publish(state: State): void {
    host.publish(jobNames.paramsTopic(args.job), {
      type: "params.slice",
      job: args.job,
      term: state.term,
      version: state.version,
      attempt: state.attempt,
      r: args.r,
      offset: args.offset,
      data: state.params! as ParamsSlice["data"],
    } satisfies ParamsSlice);
  }

  function onAbort(
    state: State,
    msg: Extract<Msg, { type: "reducer.abort" }>,
    ctx: ActorContext<Msg>,
  ): State {
    if (msg.term < state.term) return state;
    state.term = msg.term;
    for (const k of [...state.buffers.keys()])
      if (Number(k.split(".")[0]) >= msg.step) state.buffers.delete(k);
    if (state.waiting?.step === msg.step) state.waiting = undefined;
    if (state.version === msg.step && state.undo) {
      state.params = state.undo.params;
      state.version = state.undo.version;
      state.attempt = state.undo.attempt;
      state.optimizer.importState(state.undo.optimizer);
      state.undo = undefined;
    }
    ctx.reply({ type: "reducer.aborted", version: state.version });
    return state;
  }

  async function onLoad(
    state: State,
    msg: Extract<Msg, { type: "reducer.load" }>,
    ctx: ActorContext<Msg>,
  ): Promise<State> {
    if (msg.data.length !== args.length)
      throw new Error(`slice of ${msg.data.length} values does not fit reducer ${args.r} (${args.length})`);
    state.term = Math.max(state.term, msg.term);
    state.params = msg.data.slice();
    state.version = msg.version;
    state.attempt = 0;
    state.undo = undefined;
    state.buffers.clear();
    state.optimizer = createOptimizer(args.spec.optimizer);
    let restored = false;
    if (msg.checkpointStep !== null) {
      const blob = await (await host.blobs()).get(jobNames.checkpoint(args.job, msg.checkpointStep, args.r));
      if (blob) {
        const saved = packr.unpack(blob) as { optimizer: OptimizerState };
        state.optimizer.importState(saved.optimizer);
        restored = true;
      }
    }
    ctx.reply({ type: "reducer.loaded", version: state.version, optimizerRestored: restored });
    return state;
  }

  async function onCheckpoint(
    state: State,
    msg: Extract<Msg, { type: "reducer.checkpoint" }>,
    ctx: ActorContext<Msg>,
  ): Promise<State> {
    if (state.version !== msg.step || !state.params) return state;
    const blob = packr.pack({
      version: state.version,
      offset: args.offset,
      params: state.params,
      optimizer: state.optimizer.exportState(),
    });
    try {
      await (await host.blobs()).put(jobNames.checkpoint(args.job, msg.step, args.r), blob);
    } catch (error) {
      // A failed checkpoint costs recoverability of this step's optimizer state, not the reducer.
      ctx.log.warn(
        { job: args.job, r: args.r, step: msg.step, err: error },
        "checkpoint write failed; the previous checkpoint stays the latest",
      );
      return state;
    }
    ctx
      .ref(ctx.from!)
      .tell({ type: "coord.checkpointed", term: msg.term, step: msg.step, r: args.r } as Message);
    return state;
  }

  return {
    init: () => ({
      term: 0,
      version: -1,
      attempt: 0,
      optimizer: createOptimizer(args.spec.optimizer),
      buffers: new Map(),
      lastSummed: { members: [], n: 0 },
    }),
    async receive(state, msg, ctx) {
      switch (msg.type) {
        case "reducer.grad":
          return onGrad(state, msg, ctx);
        case "reducer.commit":
          return onCommit(state, msg, ctx);
        case "reducer.retry":
          return state.waiting ? tryApply(state, ctx) : state;
        case "reducer.abort":
          return onAbort(state, msg, ctx);
        case "reducer.load":
          return onLoad(state, msg, ctx);
        case "reducer.fetch":
          if (!state.params) throw new Error(`reducer ${args.r} holds no parameters yet`);
          ctx.reply({
            type: "reducer.slice",
            version: state.version,
            r: args.r,
            offset: args.offset,
            data: state.params.slice(),
          });
          return state;
        case "reducer.checkpoint":
          return onCheckpoint(state, msg, ctx);
        case "reducer.slice":
        case "reducer.loaded":
        case "reducer.aborted":
          return state;
        default:
          return assertNever(msg);
      }
    },
  };
}

function assertNever(x: never): never {
  throw new Error(`unexpected message ${JSON.stringify(x)}`);
}
