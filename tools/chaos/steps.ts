/**
 * The job's committed steps as the harness saw them, across restores from a checkpoint: a restore
 * sends the job back to its checkpoint's step, and the steps after it are committed anew. How the
 * invariants tell such a rollback from a double commit, and check the steps it cost.
 * @module
 */
import type { InvariantResult, ObservedStep, Observations } from "./invariants.js";

const pass = (detail: string): InvariantResult => ({ ok: true, detail });
const fail = (detail: string): InvariantResult => ({ ok: false, detail });

/** A restore from a checkpoint: the job went back from step `from` to the checkpoint's step `to`. */
export interface Restore {
  to: number;
  from: number;
  at: number;
}

/**
 * The steps of a restore's failover record ("restored from the checkpoint of step S; steps
 * S+1..F are redone", actors/coordinator/restore.ts), or undefined for any other record.
 */
export function parseRestore(detail: string | undefined): Omit<Restore, "at"> | undefined {
  const m = detail?.match(/^restored from the checkpoint of step (\d+); steps \d+\.\.(\d+) are redone/);
  return m ? { to: Number(m[1]), from: Number(m[2]) } : undefined;
}

/** The restores of the job, from the result's records and the observed events (merged by time). */
export function restoresOf(o: Pick<Observations, "result" | "membership">): Restore[] {
  const byAt = new Map<number, Restore>();
  for (const r of [...(o.result?.membership ?? []), ...(o.membership ?? [])]) {
    const restore = r.kind === "failover" ? parseRestore(r.detail) : undefined;
    if (restore) byAt.set(r.at, { ...restore, at: r.at });
  }
  return [...byAt.values()].sort((a, b) => a.at - b.at);
}

/** What walking the step events gave: problems, the last step, and the steps the rollbacks went back. */
interface StepWalk {
  problems: string[];
  last: number;
  rolledBack: number;
}

/**
 * Walks the committed steps in the order they were seen: each is the one after the last, except
 * where a restore sent the job back to its checkpoint's step S (≤ the last committed): the next
 * step is then S + 1, and the steps after S count anew. A step again without a restore is a
 * double commit.
 */
function walkSteps(steps: readonly ObservedStep[], restores: readonly Restore[]): StepWalk {
  const problems: string[] = [];
  const unused = [...restores];
  let seen = new Set<number>();
  let prev = 0;
  let rolledBack = 0;
  for (const s of steps) {
    if (s.step <= prev) {
      // The restore to the step before this one; else (its first redone events lost) the first earlier one.
      // A restore that rolled nothing back (the job died on its checkpoint step) is never matched so.
      const exact = unused.findIndex((r) => r.to === s.step - 1);
      const i = exact >= 0 ? exact : unused.findIndex((r) => r.to < s.step && r.from > r.to);
      const r = i < 0 ? undefined : unused.splice(i, 1)[0];
      if (!r)
        problems.push(
          seen.has(s.step) ? `step ${s.step} committed twice` : `step ${s.step} after step ${prev}`,
        );
      else {
        if (r.to + 1 !== s.step)
          problems.push(`after the restore to step ${r.to}, steps ${r.to + 1}–${s.step - 1} never reported`);
        if (prev > r.from)
          problems.push(
            `step ${prev} was committed, but the restore to step ${r.to} counts the job as at step ${r.from}`,
          );
        rolledBack += prev - r.to;
        seen = new Set([...seen].filter((x) => x <= r.to));
        prev = s.step;
      }
    } else if (s.step !== prev + 1)
      problems.push(`steps ${prev + 1}–${s.step - 1} never reported (after ${prev}, got ${s.step})`);
    seen.add(s.step);
    prev = Math.max(prev, s.step);
    if (problems.length >= 5) break;
  }
  return { problems, last: prev, rolledBack };
}

/**
 * Steps from the events: strictly increasing by one from 1, none twice, ending at the result's
 * step count; the only way back is a restore from a checkpoint (its record names the step), after
 * which the steps go on from the checkpoint's step + 1.
 */
export function stepsMonotonic(
  steps: readonly ObservedStep[],
  finalStep: number | undefined,
  restores: readonly Restore[] = [],
): InvariantResult {
  const { problems, last, rolledBack } = walkSteps(steps, restores);
  if (problems.length === 0 && finalStep !== undefined && last !== finalStep)
    problems.push(`the last step event is ${last}, the result says ${finalStep} steps`);
  if (problems.length > 0) return fail(`committed steps: ${problems.join("; ")}`);
  const back = rolledBack > 0 ? `, back ${rolledBack} step(s) only at ${restores.length} restore(s)` : "";
  return pass(`${steps.length} committed steps, each once, in order${back}`);
}

/**
 * The `stepsLost` invariant. Committed steps are lost only when nothing held the parameters, and then at most a checkpoint
 * interval per such fault: the result's `stepsLost` equals what its restore records rolled back,
 * is at most `checkpointEvery` × the durability faults injected, and is 0 without one.
 */
export function stepsLostVerdict(o: Observations): InvariantResult {
  if (!o.result) return fail("no result");
  const lost = o.result.stepsLost ?? 0;
  const restores = restoresOf(o);
  const recorded = restores.reduce((a, r) => a + (r.from - r.to), 0);
  const faults = o.durabilityFaults ?? 0;
  const every = o.checkpointEvery ?? 0;
  const list = restores.map((r) => `${r.from}→${r.to}`).join(", ") || "none";
  const problems: string[] = [];
  for (const r of restores.filter((r) => r.to > r.from))
    problems.push(`a restore went forward, to step ${r.to} from ${r.from}`);
  if (lost !== recorded)
    problems.push(`the result says stepsLost ${lost}, its restore records add up to ${recorded}`);
  if (faults === 0 && (lost > 0 || restores.length > 0))
    problems.push(
      `${restores.length} restore(s) from a checkpoint (${lost} step(s) lost) with no total or jetstream-outage fault: a live process held the parameters`,
    );
  else if (lost > every * faults)
    problems.push(`${lost} step(s) lost, more than checkpointEvery ${every} × ${faults} durability fault(s)`);
  const walked = walkSteps(o.steps, restores).rolledBack;
  if (walked > lost) problems.push(`the step events went back ${walked} step(s), stepsLost is ${lost}`);
  const text = `stepsLost ${lost} (≤ ${every} × ${faults} durability fault(s)); restores (from→to step): ${list}; the step events went back ${walked}`;
  return problems.length > 0 ? fail(`${problems.join("; ")}; ${text}`) : pass(text);
}
