import type { ActorContext, Behavior } from "../../runtime/actor/index.js";
import { systemScheduler, type Scheduler, type Timer } from "../../runtime/clock.js";
import type { Metrics } from "../../runtime/metrics.js";
import type { BlobStore } from "../../runtime/store/types.js";
import type { Failure, ParamsSlice } from "../../messages/index.js";
import type { CoordinatorCommand } from "../coordinator/protocol.js";
import type { JobSpec } from "../job/spec.js";
import { jobNames } from "../job/names.js";
import { IgnoredMessages } from "../ignored.js";
import { memberMismatch } from "../senders.js";
import { addressNode, termRefused, type TermCheck } from "../term-guard.js";
import {
  decodeCheckpoint,
  encodeCheckpoint,
  readPart,
  sha256Hex,
  type ReducerCheckpoint,
} from "./checkpoint.js";
import {
  initialReducerState,
  loadMisfit,
  reduce,
  type ReducerConfig,
  type ReducerEffect,
  type ReducerEvent,
  type ReducerFaults,
  type ReducerState,
} from "./machine.js";
import type { ReducerCommand } from "./protocol.js";
import { reducerOptimizer } from "../job/sync.js";
import { COMMIT_SECONDS_HELP, COMMIT_SECONDS_METRIC } from "../timings.js";

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
  publish(topic: string, msg: ParamsSlice): void;
  blobs(): Promise<BlobStore>;
  /** Timers and the clock (default {@link systemScheduler}). */
  scheduler?: Scheduler;
  /** Where ignored messages are counted. */
  metrics?: Metrics;
  /** Checks coordinator terms against the job's lease (see `term-guard.ts`). */
  terms?: TermCheck;
  /** Deliberate faults, for the chaos harness's own tests only (see `tools/chaos/faulty-daemon.ts`). */
  faults?: ReducerFaults;
}

/** The reducer's own wake-up, never sent by anyone else (it is not in the wire registry). */
type Wake = { type: "reducer.wake" };
type Msg = ReducerCommand | Wake;
/** The commands whose term is the coordinator's (a grad's term is its trainer's copy, and the machine ignores it). */
const COORDINATOR_TERMS = new Set([
  "reducer.commit",
  "reducer.abort",
  "reducer.load",
  "reducer.restore",
  "reducer.checkpoint",
]);

/**
 * A reducer: one shard of the parameter server. It owns slice r of the parameters and of the
 * optimizer state; its decisions (sum the commit set in sorted member order, divide, apply the
 * optimizer, keep one step of undo) are the pure machine of `machine.ts`. This shell turns
 * messages into events and performs the effects: publish the slice, tell the coordinator, reply,
 * read and write checkpoint blobs (its optimizer state is recoverable from them; its parameters
 * are on every trainer). A request it cannot serve gets a failure reply; it never throws on input.
 */
export function reducerBehavior(args: ReducerArgs, host: ReducerHost): Behavior<Msg, ReducerState> {
  const config: ReducerConfig = {
    r: args.r,
    offset: args.offset,
    length: args.length,
    optimizer: reducerOptimizer(args.spec),
    maxMembers: args.spec.maxWorkers,
    faults: host.faults,
  };
  const scheduler = host.scheduler ?? systemScheduler;
  const ignored = new IgnoredMessages("reducer", host.metrics);
  let wake: Timer | undefined;

  /**
   * Feeds one event to the machine and performs its effects. A checkpoint write is awaited, as
   * before the machine existed: the reducer reads its next message once the blob is stored.
   */
  function run(
    state: ReducerState,
    event: ReducerEvent,
    ctx: ActorContext<Msg>,
    type: string,
  ): ReducerState | Promise<ReducerState> {
    const writes: Promise<void>[] = [];
    const started = performance.now();
    let committed = false;
    for (const effect of reduce(config, state, event, scheduler.now())) {
      if (effect.kind === "checkpoint") writes.push(writeCheckpoint(effect, ctx));
      else perform(effect, ctx, type);
      committed ||= effect.kind === "publish";
    }
    // A publish is a commit: the sum, the optimizer and the send just ran (a checkpoint write is not in it).
    if (committed)
      host.metrics?.observe(
        COMMIT_SECONDS_METRIC,
        (performance.now() - started) / 1000,
        {},
        COMMIT_SECONDS_HELP,
      );
    return writes.length === 0 ? state : Promise.all(writes).then(() => state);
  }

  function perform(
    effect: Exclude<ReducerEffect, { kind: "checkpoint" }>,
    ctx: ActorContext<Msg>,
    type: string,
  ): void {
    switch (effect.kind) {
      case "publish":
        return publish(effect);
      case "tell":
        return ctx.ref<CoordinatorCommand>(effect.to).tell(effect.msg);
      case "reply":
        return ctx.reply(effect.msg);
      case "refuse":
        return refuse(ctx, type, effect.reason);
      case "wake":
        wake?.cancel();
        wake = scheduler.after(effect.afterMs, () => ctx.self.tell({ type: "reducer.wake" }));
        return;
      case "ignore":
        return ignored.note(ctx.log, type, effect.reason, effect.detail);
    }
  }

  function publish(p: Extract<ReducerEffect, { kind: "publish" }>): void {
    host.publish(jobNames.paramsTopic(args.job), {
      type: "params.slice",
      job: args.job,
      term: p.term,
      version: p.version,
      attempt: p.attempt,
      r: args.r,
      offset: args.offset,
      data: p.data,
    });
  }

  /** A failure reply to an ask (its promise rejects with a RemoteActorError); a tell is only counted. */
  function refuse(ctx: ActorContext<Msg>, type: string, reason: string): void {
    ignored.note(ctx.log, type, "refused", reason);
    if (ctx.isAsk) ctx.reply<Failure>({ type: "sys.failure", code: "bad-input", message: reason });
  }

  async function writeCheckpoint(
    effect: Extract<ReducerEffect, { kind: "checkpoint" }>,
    ctx: ActorContext<Msg>,
  ): Promise<void> {
    // Encoded at once: the machine goes on updating the slice in place after this returns.
    const blob = encodeCheckpoint(effect.blob);
    const step = effect.done.step;
    try {
      await (await host.blobs()).put(jobNames.checkpoint(args.job, step, args.r), blob);
    } catch (error) {
      // A failed checkpoint costs recoverability of this step's optimizer state, not the reducer.
      ctx.log.warn(
        { job: args.job, r: args.r, step, err: error },
        "checkpoint write failed; the previous checkpoint stays the latest",
      );
      return;
    }
    // Size and digest of the bytes stored: the manifest names them, and a restore checks them.
    if (effect.replyTo)
      ctx
        .ref<CoordinatorCommand>(effect.replyTo)
        .tell({ ...effect.done, bytes: blob.length, sha256: sha256Hex(blob) });
  }

  /**
   * A restore: reads this reducer's own part of the checkpoint of `msg.step`, checks it against
   * the manifest's size and digest and against its slice, then loads parameters and optimizer
   * state from it. A part that is missing or fails a check is refused (the coordinator falls back).
   */
  async function onRestore(
    state: ReducerState,
    msg: Extract<Msg, { type: "reducer.restore" }>,
    ctx: ActorContext<Msg>,
  ): Promise<ReducerState> {
    const name = jobNames.checkpoint(args.job, msg.step, args.r);
    let part: ReducerCheckpoint;
    try {
      const blob = await (await host.blobs()).get(name);
      if (!blob) throw new Error(`checkpoint part ${name} is missing`);
      part = readPart(blob, name, { ...msg, offset: args.offset, length: args.length });
    } catch (error) {
      refuse(ctx, msg.type, error instanceof Error ? error.message : String(error));
      return state;
    }
    const event: ReducerEvent = {
      type: "load",
      term: msg.term,
      version: msg.step,
      data: part.params,
      checkpoint: part,
    };
    return run(state, event, ctx, msg.type);
  }

  /** Reads the optimizer state of a checkpoint (I/O), then lets the machine load atomically. */
  async function onLoad(
    state: ReducerState,
    msg: Extract<Msg, { type: "reducer.load" }>,
    ctx: ActorContext<Msg>,
  ): Promise<ReducerState> {
    const misfit = loadMisfit(config, msg.data.length);
    if (misfit) return run(state, { ...loadEvent(msg), checkpoint: undefined }, ctx, msg.type);
    let checkpoint: ReducerCheckpoint | undefined;
    if (msg.checkpointStep !== null) {
      const name = jobNames.checkpoint(args.job, msg.checkpointStep, args.r);
      try {
        const blob = await (await host.blobs()).get(name);
        checkpoint = blob ? decodeCheckpoint(blob, name) : undefined;
      } catch (error) {
        refuse(ctx, msg.type, `could not read checkpoint ${name}: ${String(error)}`);
        return state;
      }
    }
    return run(state, { ...loadEvent(msg), checkpoint }, ctx, msg.type);
  }

  return {
    init: () => initialReducerState(config),
    async receive(state, msg, ctx) {
      const type = msg.type;
      if (
        COORDINATOR_TERMS.has(msg.type) &&
        "term" in msg &&
        (await termRefused(host.terms, ctx, ignored, msg))
      )
        return state;
      switch (msg.type) {
        case "reducer.grad": {
          // Only member m's own node may contribute m's slice (else one node could overwrite
          // another's gradient, or fill the buffers with made-up members).
          const mismatch = memberMismatch(msg.member, ctx.from, addressNode(ctx.self.address) ?? "");
          if (mismatch) return ignoreMsg(state, ctx, type, mismatch);
          return run(state, gradEvent(msg), ctx, type);
        }
        case "reducer.commit":
          if (!ctx.from) return ignoreMsg(state, ctx, type, "no-reply-address");
          return run(state, commitEvent(msg, ctx.from), ctx, type);
        case "reducer.wake":
          return run(state, { type: "wake" }, ctx, type);
        case "reducer.abort":
          return run(state, { type: "abort", term: msg.term, step: msg.step }, ctx, type);
        case "reducer.load":
          return onLoad(state, msg, ctx);
        case "reducer.restore":
          return onRestore(state, msg, ctx);
        case "reducer.fetch":
          return run(state, { type: "fetch" }, ctx, type);
        case "reducer.checkpoint":
          return run(
            state,
            { type: "checkpoint", term: msg.term, step: msg.step, replyTo: ctx.from },
            ctx,
            type,
          );
        case "reducer.slice":
        case "reducer.loaded":
        case "reducer.aborted":
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
      wake?.cancel();
    },
  };

  function ignoreMsg(
    state: ReducerState,
    ctx: ActorContext<Msg>,
    type: string,
    reason: string,
  ): ReducerState {
    ignored.note(ctx.log, type, reason);
    return state;
  }
}

function loadEvent(
  msg: Extract<ReducerCommand, { type: "reducer.load" }>,
): Omit<Extract<ReducerEvent, { type: "load" }>, "checkpoint"> {
  return { type: "load", term: msg.term, version: msg.version, data: msg.data };
}

function gradEvent(msg: Extract<ReducerCommand, { type: "reducer.grad" }>): ReducerEvent {
  return { type: "grad", step: msg.step, attempt: msg.attempt, member: msg.member, n: msg.n, data: msg.data };
}

function commitEvent(
  msg: Extract<ReducerCommand, { type: "reducer.commit" }>,
  replyTo: string,
): ReducerEvent {
  const { term, step, attempt, contributors, total } = msg;
  return { type: "commit", term, step, attempt, contributors, total, replyTo };
}
