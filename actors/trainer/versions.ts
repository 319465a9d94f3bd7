/**
 * A trainer's parameter versions as pure functions over an explicit state: which version it
 * holds (and the ones before, so a redone step can roll back and a stale step can be computed on
 * an older one), assembling the reducers' published
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

/** A version held besides the newest. */
export interface HeldVersion {
  version: number;
  params: Float32Array;
}

/** What a trainer knows about parameter versions. `params` is set exactly when `version >= 0`. */
export interface TrainerVersions {
  term: number;
  coordinator: string | undefined;
  /** The newest version held, and its parameters. */
  version: number;
  params: Float32Array | undefined;
  /** Older versions, newest first: at most `keep - 1` (a redo rolls back to one; a stale step computes on one). */
  older: HeldVersion[];
  /** Versions held in all: 2 when synchronous (the newest and the one before), 2 + staleness. */
  keep: number;
  assembler: ParamAssembler | undefined;
  pendingStep: PendingStep | undefined;
}

/** A trainer before its first prepare, keeping `keep` versions (2 + the job's staleness). */
export function initialVersions(keep = 2): TrainerVersions {
  return {
    term: 0,
    coordinator: undefined,
    version: -1,
    params: undefined,
    older: [],
    keep: Math.max(2, keep),
    assembler: undefined,
    pendingStep: undefined,
  };
}

/** The version a step is computed on: `on`, or the one before the step. */
export function neededVersion(msg: StartStep): number {
  return msg.on ?? msg.step - 1;
}

/** The parameters of `version` when held (the newest or an older one). */
export function paramsOf(s: TrainerVersions, version: number): Float32Array | undefined {
  if (s.params && s.version === version) return s.params;
  return s.older.find((o) => o.version === version)?.params;
}

/** Adopts a newer coordinator term (and its address); an older or equal one changes nothing. */
export function adoptTerm(s: TrainerVersions, term: number, from: string | undefined): void {
  if (term <= s.term) return;
  s.term = term;
  s.coordinator = from;
}

/** Holds `params` as `version`, keeping the versions before it (up to `keep` in all) when this one is newer. */
export function holdVersion(s: TrainerVersions, version: number, params: Float32Array): void {
  if (s.params && s.version < version) s.older = [{ version: s.version, params: s.params }, ...s.older];
  s.older = s.older.filter((o) => o.version < version).slice(0, s.keep - 1);
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
    s.older = [];
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

/** What to do with a `trainer.step`. */
export type StepDecision =
  | { kind: "stale" }
  /** Bad input: the version asked is neither the one before the step nor one the trainer may keep. */
  | { kind: "misfit"; detail: string }
  | { kind: "run" }
  /** Park it until its version comes; look again after {@link RESUME_AFTER_MS}. */
  | { kind: "wait" }
  /** The trainer holds only newer versions than the step needs: contribute nothing. */
  | { kind: "ahead" };

/**
 * Decides about a step asked by `from` at time `now`. Versions at or past the step belong to an
 * aborted attempt of it (the reducers rolled them back): they are dropped first.
 */
export function decideStep(s: TrainerVersions, msg: StartStep, from: string, now: number): StepDecision {
  if (msg.term < s.term) return { kind: "stale" };
  const need = neededVersion(msg);
  // keep = 2 + staleness: a step is computed on one of the `staleness + 1` versions before it.
  if (need > msg.step - 1 || need < msg.step - s.keep + 1)
    return { kind: "misfit", detail: `step ${msg.step} on version ${need}, keeps ${s.keep} versions` };
  adoptTerm(s, msg.term, from);
  if (s.version >= msg.step) rollBackBelow(s, msg.step);
  if (paramsOf(s, need)) return { kind: "run" };
  if (s.version < need) {
    s.pendingStep = { msg, from, since: now };
    return { kind: "wait" };
  }
  return { kind: "ahead" };
}

/** Drops the versions ≥ `step` when an older one is held to fall back to (and partial newer ones). */
function rollBackBelow(s: TrainerVersions, step: number): void {
  const back = s.older.find((o) => o.version < step);
  if (!back) return;
  s.params = back.params;
  s.version = back.version;
  s.older = s.older.filter((o) => o.version < back.version);
  s.assembler?.dropAbove(s.version);
}

/** The parked step, taken out, when the version it needs is now held. */
export function takeRunnable(s: TrainerVersions): PendingStep | undefined {
  const pending = s.pendingStep;
  if (!pending || !paramsOf(s, neededVersion(pending.msg))) return undefined;
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
  const need = neededVersion(pending.msg);
  if (version !== need) {
    s.pendingStep = undefined;
    return `reducers hold version ${version}, the step needs ${need}`;
  }
  holdVersion(s, version, params);
  return undefined;
}

/** Serves `trainer.fetch` from any version held; a string says why it cannot. */
export function serveFetch(s: TrainerVersions, msg: FetchParams): ParamsCopy | string {
  const source = paramsOf(s, msg.version);
  if (!source) {
    const held = [s.version, ...s.older.map((o) => o.version)].filter((v) => v >= 0);
    return `trainer holds versions ${held.join("/") || "-"}, not ${msg.version}`;
  }
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
