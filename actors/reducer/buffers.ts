/**
 * What a reducer buffers of the gradient slices it is sent: wire input, so bounded. A slice is held
 * only after a load, for the step in flight or the one after, for the newest attempt of its step
 * (or the one a commit waits for), from a member of the commit set once the commit is known, and
 * for at most `maxMembers` members per attempt before it. Everything else is dropped and counted.
 * @module
 */
import { decode } from "../compute/compress.js";
import type { Contribution, ReducerConfig, ReducerEffect, ReducerEvent, ReducerState } from "./machine.js";

/** Members a step's attempt buffers when the config names no bound (JobSpec's largest `maxWorkers`). */
export const DEFAULT_MAX_MEMBERS = 1024;
/**
 * Steps ahead of the applied version a slice may be for: the step in flight (version + 1) and the
 * one after. A trainer computes step s + 1 only from the parameters of step s, which this reducer
 * publishes when it applies s, so an honest slice is never further ahead.
 */
export const STEPS_AHEAD = 2;

type Grad = Extract<ReducerEvent, { type: "grad" }>;

/**
 * Buffers one slice if the bounds allow it. `held` says whether it was stored; `effects` are the
 * `ignore`s of what was refused or superseded, one per slice.
 */
export function bufferGrad(
  config: ReducerConfig,
  state: ReducerState,
  e: Grad,
): { held: boolean; effects: ReducerEffect[] } {
  const refused = refusal(config, state, e);
  if (refused) return { held: false, effects: [refused] };
  // Decoded once the slice passed the bounds (its length is this reducer's), before it can
  // supersede anything: a malformed payload is dropped as if never sent.
  const packed = e.data instanceof Float32Array ? undefined : e.data;
  const data = packed ? decode(packed.encoding, packed.bytes, config.length) : e.data;
  if (!(data instanceof Float32Array))
    return { held: false, effects: [ignore("bad-payload", `${packed?.encoding} slice of ${e.member}`)] };
  let byAttempt = state.buffers.get(e.step);
  if (!byAttempt) state.buffers.set(e.step, (byAttempt = new Map()));
  const w = state.waiting;
  const dropped = keepAttempt(byAttempt, e.attempt, w?.step === e.step ? w.attempt : undefined);
  if (!dropped)
    return { held: false, effects: [ignore("stale-attempt", `attempt ${e.attempt} of step ${e.step}`)] };
  let byMember = byAttempt.get(e.attempt);
  if (!byMember) byAttempt.set(e.attempt, (byMember = new Map()));
  if (!byMember.has(e.member) && byMember.size >= (config.maxMembers ?? DEFAULT_MAX_MEMBERS)) {
    const detail = `step ${e.step} attempt ${e.attempt} already holds ${byMember.size} members`;
    return { held: false, effects: [...dropped, ignore("too-many-members", detail)] };
  }
  byMember.set(e.member, { n: e.n, data });
  return { held: true, effects: dropped };
}

/** Why a slice is refused before anything is looked up, or undefined. */
function refusal(config: ReducerConfig, state: ReducerState, e: Grad): ReducerEffect | undefined {
  // Before a load nothing buffered would survive it (a load clears the buffers): hold nothing.
  if (!state.params) return ignore("not-loaded", `step ${e.step} before any load`);
  if (e.step <= state.version) return ignore("stale-step", `step ${e.step}, holds ${state.version}`);
  if (e.step > state.version + STEPS_AHEAD)
    return ignore("future-step", `step ${e.step}, holds ${state.version}`);
  if (e.data.length !== config.length)
    return ignore("wrong-length", `${e.data.length} values, owns ${config.length}`);
  const w = state.waiting;
  // Once the commit names its set nobody else's slice can count (the fault sums them on purpose).
  const committed = w && w.step === e.step && w.attempt === e.attempt;
  if (committed && !w.contributors.includes(e.member) && !config.faults?.keepDeadSlices)
    return ignore("not-contributor", `${e.member} is not in the commit set of step ${e.step}`);
  return undefined;
}

/**
 * Attempts only grow within a step (a redo or a takeover raises them), so a step keeps the slices
 * of its newest attempt and of the attempt a commit waits for. Returns one `ignore` per slice a
 * newer attempt supersedes, or undefined when `attempt` itself is superseded.
 */
function keepAttempt(
  byAttempt: Map<number, Map<string, Contribution>>,
  attempt: number,
  waiting: number | undefined,
): ReducerEffect[] | undefined {
  const newest = Math.max(-1, ...[...byAttempt.keys()].filter((a) => a !== waiting));
  if (attempt !== waiting && attempt < newest) return undefined;
  const dropped: ReducerEffect[] = [];
  for (const [a, members] of byAttempt) {
    if (a >= attempt || a === waiting) continue;
    byAttempt.delete(a);
    for (const m of members.keys())
      dropped.push(ignore("superseded-attempt", `${m}'s slice of attempt ${a}`));
  }
  return dropped;
}

function ignore(reason: string, detail: string): ReducerEffect {
  return { kind: "ignore", reason, detail };
}
