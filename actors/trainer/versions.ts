/**
 * A trainer's parameter versions as pure functions over an explicit state: which version it
 * holds (and the one before, so a redone step can roll back), assembling the reducers' published
 * slices, when a step can start, and what `trainer.fetch` may be served. No I/O, no timers, no
 * clock reads (`now` is an argument): the actor in `behavior.ts` loads parameters into its worker,
 * asks reducers and sends gradients.
 * @module
 */
import type { ParamsSlice } from "../../messages/index.js";
import type { SliceCopy } from "../reducer/protocol.js";
import { ParamAssembler, type SliceRefusal } from "./params.js";
import type { FetchParams, ParamsCopy, Prepare, StartStep } from "./protocol.js";

/** How long after a step is parked a trainer looks whether its version came (the timer). */
export const RESUME_AFTER_MS = 2_000;
/** How long a parked step must have waited before the trainer fetches the version from the reducers. */
export const RESUME_MIN_WAIT_MS = 1_900;

/** A step that waits for the version before it (its slices are still on the way). */
export interface PendingStep {
  msg: StartStep;
  from: string;
  since: number;
}

/** What a trainer knows about parameter versions. `params` is set exactly when `version >= 0`. */
export interface TrainerVersions {
  term: number;
  coordinator: string | undefined;
  version: number;
  params: Float32Array | undefined;
  prev: { version: number; params: Float32Array } | undefined;
  assembler: ParamAssembler | undefined;
  pendingStep: PendingStep | undefined;
}

/** A trainer before its first prepare. */
export function initialVersions(): TrainerVersions {
  return {
    term: 0,
    coordinator: undefined,
    version: -1,
    params: undefined,
    prev: undefined,
    assembler: undefined,
    pendingStep: undefined,
  };
}

/** Adopts a newer coordinator term (and its address); an older or equal one changes nothing. */
export function adoptTerm(s: TrainerVersions, term: number, from: string | undefined): void {
  if (term <= s.term) return;
  s.term = term;
  s.coordinator = from;
}

/** Holds `params` as `version`, keeping the version before it when this one is newer. */
export function holdVersion(s: TrainerVersions, version: number, params: Float32Array): void {
  if (s.params && s.version < version) s.prev = { version: s.version, params: s.params };
  s.params = params;
  s.version = version;
}

/** What a prepare needs: the initial parameters, a fetch from the reducers (a joiner), or nothing. */
export type PreparePlan = { kind: "init" } | { kind: "fetch"; atLeast: number } | { kind: "hold" };

/** Starts a prepare: takes the reducer layout and says how to come to hold the version asked. */
export function startPrepare(s: TrainerVersions, msg: Prepare): PreparePlan {
  s.assembler = new ParamAssembler(msg.reducers.bounds);
  if (msg.version === 0 && s.version !== 0) return { kind: "init" };
  // A joiner: take the newest version every reducer agrees on; later ones arrive as slices.
  if (msg.version > 0 && s.version < msg.version) return { kind: "fetch", atLeast: msg.version };
  if (msg.version > 0 && s.version > msg.version) {
    // The job is older than what this trainer holds: it was restored from a checkpoint (or the
    // step held was rolled back). Its versions belong to the abandoned timeline: forget them and
    // take the reducers' version, so the replica becomes bit-identical to theirs.
    s.prev = undefined;
    s.pendingStep = undefined;
    return { kind: "fetch", atLeast: msg.version };
  }
  return { kind: "hold" };
}

/**
 * Adds a published slice. Returns the parameters of the version it completed (now held), to be
 * loaded into the worker, or undefined; `ignored` names why a slice could not be used at all.
 */
export function addSlice(
  s: TrainerVersions,
  slice: ParamsSlice,
): { completed?: Float32Array; ignored?: "stale-term" | "not-prepared" | SliceRefusal } {
  if (slice.term < s.term) return { ignored: "stale-term" };
  if (!s.assembler || !s.params) return { ignored: "not-prepared" };
  const { completed: version, refused } = s.assembler.add(slice, s.version);
  if (refused) return { ignored: refused };
  if (version === undefined) return {};
  const next = s.params.slice();
  s.assembler.apply(version, next);
  holdVersion(s, version, next);
  return { completed: next };
}

/** What to do with a `trainer.step`. `reload`: parameters rolled back, to be loaded into the worker. */
export type StepDecision =
  | { kind: "stale" }
  | { kind: "run"; reload?: Float32Array }
  /** Park it until its version comes; look again after {@link RESUME_AFTER_MS}. */
  | { kind: "wait"; reload?: Float32Array }
  /** The trainer holds a newer version than the step needs (and cannot roll back): contribute nothing. */
  | { kind: "ahead"; reload?: Float32Array };

/** Decides about a step asked by `from` at time `now`. */
export function decideStep(s: TrainerVersions, msg: StartStep, from: string, now: number): StepDecision {
  if (msg.term < s.term) return { kind: "stale" };
  adoptTerm(s, msg.term, from);
  let reload: Float32Array | undefined;
  if (s.version >= msg.step && s.prev && s.prev.version === msg.step - 1) {
    // The step is being redone: the version it produced was rolled back on the reducers.
    s.params = s.prev.params;
    s.version = s.prev.version;
    s.prev = undefined;
    s.assembler?.dropAbove(s.version);
    reload = s.params;
  }
  const withReload = reload ? { reload } : {};
  if (s.version === msg.step - 1) return { kind: "run", ...withReload };
  if (s.version < msg.step - 1) {
    s.pendingStep = { msg, from, since: now };
    return { kind: "wait", ...withReload };
  }
  return { kind: "ahead", ...withReload };
}

/** The parked step, taken out, when the version it needs is now held. */
export function takeRunnable(s: TrainerVersions): PendingStep | undefined {
  const pending = s.pendingStep;
  if (!pending || s.version !== pending.msg.step - 1) return undefined;
  s.pendingStep = undefined;
  return pending;
}

/** The parked step whose version should now be fetched from the reducers (its slices never came). */
export function resumeDue(s: TrainerVersions, now: number): PendingStep | undefined {
  const pending = s.pendingStep;
  if (!pending || now - pending.since < RESUME_MIN_WAIT_MS) return undefined;
  return pending;
}

/**
 * Takes the version fetched for a parked step. When it is not the one the step needs, the step
 * is dropped (the trainer waits for the next one) and the reason returned.
 */
export function takeFetched(
  s: TrainerVersions,
  pending: PendingStep,
  version: number,
  params: Float32Array,
): string | undefined {
  if (version !== pending.msg.step - 1) {
    s.pendingStep = undefined;
    return `reducers hold version ${version}, the step needs ${pending.msg.step - 1}`;
  }
  holdVersion(s, version, params);
  return undefined;
}

/** Serves `trainer.fetch` from the version held or the one before it; a string says why it cannot. */
export function serveFetch(s: TrainerVersions, msg: FetchParams): ParamsCopy | string {
  const prev = s.prev;
  const source =
    s.version === msg.version ? s.params : prev?.version === msg.version ? prev.params : undefined;
  if (!source) return `trainer holds versions ${s.version}/${s.prev?.version ?? "-"}, not ${msg.version}`;
  return {
    type: "trainer.params",
    version: msg.version,
    offset: msg.offset,
    data: source.slice(msg.offset, msg.offset + msg.length),
  };
}

/**
 * The parameters every reducer agrees on, when they hold one version ≥ `atLeast`; undefined
 * while they still disagree (reducers mid-commit hold adjacent versions for a moment).
 */
export function agreedVersion(
  slices: readonly SliceCopy[],
  atLeast: number,
  paramCount: number,
): { version: number; params: Float32Array } | undefined {
  const version = slices[0]?.version;
  if (version === undefined || version < atLeast || !slices.every((x) => x.version === version))
    return undefined;
  const params = new Float32Array(paramCount);
  for (const x of slices) params.set(x.data, x.offset);
  return { version, params };
}
