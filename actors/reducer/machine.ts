/**
 * A reducer's decisions as a pure machine: events in (gradient slices, commits, aborts, loads,
 * timer wake-ups, with `now` given), effects out (publish the slice, tell the coordinator, reply,
 * write a checkpoint, wake me later). No I/O, no timers, no clock reads: the actor around it
 * (`behavior.ts`) performs the effects. The state is updated in place and owned by the machine:
 * the parameter slice may hold millions of floats, and copying it per event would cost more than
 * the sum itself.
 * @module
 */
import type { CoordinatorCommand } from "../coordinator/protocol.js";
import {
  createOptimizer,
  type Optimizer,
  type OptimizerSpec,
  type OptimizerState,
} from "../compute/optimizer.js";
import type { ReducerCheckpoint } from "./checkpoint.js";
import type { Aborted, GradData, Loaded, SliceCopy } from "./protocol.js";
import { bufferGrad } from "./buffers.js";

type SliceApplied = Extract<CoordinatorCommand, { type: "coord.applied" }>;
type SlicesMissing = Extract<CoordinatorCommand, { type: "coord.missing" }>;
/** The acknowledgement of a part; the shell adds its size and digest once it is encoded. */
type Checkpointed = Omit<Extract<CoordinatorCommand, { type: "coord.checkpointed" }>, "bytes" | "sha256">;
/** A parameter slice the reducer owns (never a view of a shared buffer: it is published as is). */
type Slice = Float32Array<ArrayBuffer>;

/** How long a commit waits for slices still on the wire before it reports them missing. */
export const MISSING_AFTER_MS = 1_500;

/**
 * Faults a test or chaos entry point can switch on, to prove the harness notices a broken
 * reducer. Never set by the production daemon.
 */
export interface ReducerFaults {
  /** Sum every buffered slice of a step, the dead and the left-out members' too, not just the commit set. */
  keepDeadSlices?: boolean;
}

/** What a reducer is: which slice it owns and how it updates it. */
export interface ReducerConfig {
  r: number;
  offset: number;
  length: number;
  optimizer: OptimizerSpec;
  /**
   * Most distinct members whose slices one step's attempt buffers before its commit names them
   * (the job's `maxWorkers`; default `DEFAULT_MAX_MEMBERS` of `buffers.ts`).
   */
  maxMembers?: number;
  faults?: ReducerFaults;
}

/** One member's gradient slice for a step: the sum over its `n` samples. */
export interface Contribution {
  n: number;
  data: Float32Array;
}

/** A commit waiting for some of its contributors' slices. */
export interface Waiting {
  step: number;
  attempt: number;
  /** Sorted: the order of the sum. */
  contributors: string[];
  total: number;
  replyTo: string;
  since: number;
}

/** The state before the last applied step, so an aborted step can be rolled back. */
export interface Undo {
  version: number;
  attempt: number;
  params: Slice;
  optimizer: OptimizerState;
}

/** A reducer's state. `params` is set exactly when `version >= 0` (after a load). */
export interface ReducerState {
  term: number;
  version: number;
  attempt: number;
  params: Slice | undefined;
  optimizer: Optimizer;
  undo: Undo | undefined;
  /** Gradient slices by step, then attempt, then member. */
  buffers: Map<number, Map<number, Map<string, Contribution>>>;
  lastSummed: { members: string[]; n: number };
  waiting: Waiting | undefined;
}

/** What the machine is told. */
export type ReducerEvent =
  /** `data` is float32 or packed (fp16/int8); the buffers decode a packed slice once it is held. */
  | { type: "grad"; step: number; attempt: number; member: string; n: number; data: GradData }
  | {
      type: "commit";
      term: number;
      step: number;
      attempt: number;
      contributors: readonly string[];
      total: number;
      replyTo: string;
    }
  /** A wake-up the machine asked for. */
  | { type: "wake" }
  | { type: "abort"; term: number; step: number }
  /** Parameters from a trainer, and the optimizer state of a checkpoint when one was found. */
  | {
      type: "load";
      term: number;
      version: number;
      data: Float32Array;
      checkpoint: ReducerCheckpoint | undefined;
    }
  | { type: "fetch" }
  | { type: "checkpoint"; term: number; step: number; replyTo: string | undefined };

/** What the machine asks its shell to do, in order. */
export type ReducerEffect =
  /** Publish the current slice on the job's parameter topic (the all-gather). */
  | { kind: "publish"; term: number; version: number; attempt: number; data: Slice }
  | { kind: "tell"; to: string; msg: SliceApplied | SlicesMissing }
  /** Answer the current ask. */
  | { kind: "reply"; msg: Aborted | Loaded | SliceCopy }
  /** Answer the current ask with a failure: the asker's promise rejects, the reducer lives on. */
  | { kind: "refuse"; reason: string }
  /** Deliver a `wake` event after this long (replaces any earlier wake-up). */
  | { kind: "wake"; afterMs: number }
  /** Write this checkpoint, then tell `replyTo` (when given) that it is written. */
  | { kind: "checkpoint"; blob: ReducerCheckpoint; replyTo: string | undefined; done: Checkpointed }
  /** The event changed nothing; counted by the shell. `reason` is a fixed code. */
  | { kind: "ignore"; reason: string; detail: string };

/** A reducer before its first load. */
export function initialReducerState(config: ReducerConfig): ReducerState {
  return {
    term: 0,
    version: -1,
    attempt: 0,
    params: undefined,
    optimizer: createOptimizer(config.optimizer),
    undo: undefined,
    buffers: new Map(),
    lastSummed: { members: [], n: 0 },
    waiting: undefined,
  };
}

/** Why a load of `length` values cannot fit this reducer, or undefined when it fits. */
export function loadMisfit(config: ReducerConfig, length: number): string | undefined {
  if (length === config.length) return undefined;
  return `slice of ${length} values does not fit reducer ${config.r} (${config.length})`;
}

/** Handles one event at time `now`; returns the effects to perform, in order. */
export function reduce(
  config: ReducerConfig,
  state: ReducerState,
  event: ReducerEvent,
  now: number,
): ReducerEffect[] {
  switch (event.type) {
    case "grad":
      return onGrad(config, state, event, now);
    case "commit":
      return onCommit(config, state, event, now);
    case "wake":
      return state.waiting ? tryApply(config, state, now) : [];
    case "abort":
      return onAbort(state, event);
    case "load":
      return onLoad(config, state, event);
    case "fetch":
      return onFetch(config, state);
    case "checkpoint":
      return onCheckpoint(config, state, event);
  }
}

function onGrad(
  config: ReducerConfig,
  state: ReducerState,
  e: Extract<ReducerEvent, { type: "grad" }>,
  now: number,
): ReducerEffect[] {
  const { effects, held } = bufferGrad(config, state, e);
  const w = state.waiting;
  if (held && w && w.step === e.step && w.attempt === e.attempt)
    return [...effects, ...tryApply(config, state, now)];
  return effects;
}

function onCommit(
  config: ReducerConfig,
  state: ReducerState,
  e: Extract<ReducerEvent, { type: "commit" }>,
  now: number,
): ReducerEffect[] {
  if (e.term < state.term) return [ignore("stale-term", `term ${e.term}, holds ${state.term}`)];
  state.term = e.term;
  if (e.step === state.version && e.attempt === state.attempt && state.params) {
    // Idempotent: a new coordinator re-sent a commit this reducer already applied.
    return [
      publish(state, state.params),
      applied(config, state, e.replyTo, e.step, e.attempt, state.lastSummed.members, state.lastSummed.n),
    ];
  }
  if (e.step !== state.version + 1 || !state.params) {
    return [missing(config, state.term, e, [], `reducer holds version ${state.version}`)];
  }
  const { step, attempt, total, replyTo } = e;
  state.waiting = { step, attempt, contributors: [...e.contributors].sort(), total, replyTo, since: now };
  return tryApply(config, state, now);
}

/** Applies the waiting commit if every contributor's slice is here; else waits, or reports them missing. */
function tryApply(config: ReducerConfig, state: ReducerState, now: number): ReducerEffect[] {
  const w = state.waiting;
  const params = state.params;
  if (!w || !params) return [];
  const slices = state.buffers.get(w.step)?.get(w.attempt) ?? new Map<string, Contribution>();
  const absent = w.contributors.filter((m) => !slices.has(m));
  if (absent.length > 0) {
    const left = MISSING_AFTER_MS - (now - w.since);
    if (left > 0) return [{ kind: "wake", afterMs: left }];
    state.waiting = undefined;
    return [missing(config, state.term, w, absent, "slices never arrived")];
  }
  const summed = config.faults?.keepDeadSlices ? [...slices.keys()].sort() : w.contributors;
  state.undo = {
    version: state.version,
    attempt: state.attempt,
    params: params.slice(),
    optimizer: state.optimizer.exportState(),
  };
  const { sum, n } = sumSlices(config.length, summed, slices);
  state.lastSummed = { members: summed, n };
  if (w.total > 0) state.optimizer.step(params, sum, 1 / w.total);
  state.version = w.step;
  state.attempt = w.attempt;
  state.waiting = undefined;
  for (const step of [...state.buffers.keys()]) if (step <= w.step) state.buffers.delete(step);
  return [publish(state, params), applied(config, state, w.replyTo, w.step, w.attempt, summed, n)];
}

/**
 * Sums the slices of `members` in the order given (the caller sorts it), so the float32 result
 * is bit-identical whatever order the slices arrived in. Every member must have a slice.
 */
export function sumSlices(
  length: number,
  members: readonly string[],
  slices: ReadonlyMap<string, Contribution>,
): { sum: Float32Array; n: number } {
  const sum = new Float32Array(length);
  let n = 0;
  for (const member of members) {
    const c = slices.get(member);
    if (!c) throw new RangeError(`no slice of ${member} to sum`);
    n += c.n;
    const data = c.data;
    // In bounds by construction (every slice was checked to be `length` long): no `?? 0` in the hot loop.
    for (let i = 0; i < length; i++) sum[i] = sum[i]! + data[i]!;
  }
  return { sum, n };
}

function onAbort(state: ReducerState, e: Extract<ReducerEvent, { type: "abort" }>): ReducerEffect[] {
  // No answer to a stale coordinator: it has been superseded, its ask may time out.
  if (e.term < state.term) return [ignore("stale-term", `term ${e.term}, holds ${state.term}`)];
  state.term = e.term;
  for (const step of [...state.buffers.keys()]) if (step >= e.step) state.buffers.delete(step);
  if (state.waiting?.step === e.step) state.waiting = undefined;
  const undo = state.undo;
  if (state.version === e.step && undo) {
    state.params = undo.params;
    state.version = undo.version;
    state.attempt = undo.attempt;
    state.optimizer.importState(undo.optimizer);
    state.undo = undefined;
  }
  return [{ kind: "reply", msg: { type: "reducer.aborted", version: state.version } }];
}

function onLoad(
  config: ReducerConfig,
  state: ReducerState,
  e: Extract<ReducerEvent, { type: "load" }>,
): ReducerEffect[] {
  const misfit = loadMisfit(config, e.data.length);
  if (misfit) return [{ kind: "refuse", reason: misfit }];
  const optimizer = createOptimizer(config.optimizer);
  if (e.checkpoint) {
    try {
      optimizer.importState(e.checkpoint.optimizer);
    } catch (error) {
      // Nothing changed: the reducer keeps what it held and the coordinator sees the failure.
      return [{ kind: "refuse", reason: `checkpoint does not fit reducer ${config.r}: ${String(error)}` }];
    }
  }
  state.term = Math.max(state.term, e.term);
  state.params = e.data.slice();
  state.version = e.version;
  state.attempt = 0;
  state.undo = undefined;
  state.buffers.clear();
  state.optimizer = optimizer;
  return [
    {
      kind: "reply",
      msg: { type: "reducer.loaded", version: state.version, optimizerRestored: Boolean(e.checkpoint) },
    },
  ];
}

function onFetch(config: ReducerConfig, state: ReducerState): ReducerEffect[] {
  if (!state.params) return [{ kind: "refuse", reason: `reducer ${config.r} holds no parameters yet` }];
  const msg: SliceCopy = {
    type: "reducer.slice",
    version: state.version,
    r: config.r,
    offset: config.offset,
    data: state.params.slice(),
  };
  return [{ kind: "reply", msg }];
}

function onCheckpoint(
  config: ReducerConfig,
  state: ReducerState,
  e: Extract<ReducerEvent, { type: "checkpoint" }>,
): ReducerEffect[] {
  if (state.version !== e.step || !state.params)
    return [ignore("not-at-step", `checkpoint of step ${e.step}, holds ${state.version}`)];
  const blob: ReducerCheckpoint = {
    version: state.version,
    offset: config.offset,
    params: state.params,
    optimizer: state.optimizer.exportState(),
  };
  const done: Checkpointed = { type: "coord.checkpointed", term: e.term, step: e.step, r: config.r };
  return [{ kind: "checkpoint", blob, replyTo: e.replyTo, done }];
}

function publish(state: ReducerState, data: Slice): ReducerEffect {
  return { kind: "publish", term: state.term, version: state.version, attempt: state.attempt, data };
}

function applied(
  config: ReducerConfig,
  state: ReducerState,
  to: string,
  step: number,
  attempt: number,
  summed: string[],
  n: number,
): ReducerEffect {
  return {
    kind: "tell",
    to,
    msg: { type: "coord.applied", term: state.term, step, attempt, r: config.r, summed, n },
  };
}

function missing(
  config: ReducerConfig,
  term: number,
  c: { step: number; attempt: number; replyTo: string },
  members: string[],
  reason: string,
): ReducerEffect {
  return {
    kind: "tell",
    to: c.replyTo,
    msg: { type: "coord.missing", term, step: c.step, attempt: c.attempt, r: config.r, members, reason },
  };
}

function ignore(reason: string, detail: string): ReducerEffect {
  return { kind: "ignore", reason, detail };
}
