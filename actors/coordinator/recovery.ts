import { jobNames } from "../job/names.js";
import {
  RECOVERY_RETRIES,
  RECOVERY_RETRY_MS,
  type Core,
  type RecoveryContext,
  type ReducerSpawn,
  job,
  nodeOf,
} from "./model.js";
import { reducerName } from "./placement.js";
import type { PersistedJob } from "./state.js";
import { restorable, startRestore } from "./restore.js";
import { inFlightDones, startStep } from "./step.js";

/**
 * Where to rebuild lost reducers and which trainers to fetch their parameters from: a live
 * member's trainer first; failing that, any live node's trainer of this job (a joiner admitted
 * after the last durable record holds them too). Throws when no live trainer is left.
 */
export function planRebuild(
  p: PersistedJob,
  alive: readonly string[],
  lost: readonly number[],
  gen: number,
): { spawns: ReducerSpawn[]; trainers: string[] } {
  if (lost.length === 0) return { spawns: [], trainers: [] };
  const members = p.members.filter((x) => alive.includes(x.node));
  const others = alive.filter((n) => !members.some((x) => x.node === n)).sort();
  const trainers = [
    ...members.map((x) => x.trainer),
    ...others.map((n) => `${n}/${jobNames.trainer(p.job)}`),
  ];
  if (trainers.length === 0)
    throw new Error("no live trainer holds the parameters to rebuild a reducer from");
  const targets = members.length > 0 ? members.map((x) => x.node) : others;
  const spawns = lost.map((r, i) => ({
    r,
    node: targets[(r + i) % targets.length] ?? "",
    name: reducerName(p.job, r, gen),
  }));
  return { spawns, trainers };
}

/** Replaces reducers on dead nodes (parameters from a trainer, optimizer state from the last checkpoint) and redoes the step. */
export function recoverReducers(m: Core, reason: string, releaseOrphans = false): void {
  const { p, ledger } = job(m);
  const ph = m.s.phase;
  for (const d of inFlightDones(ph)) if (d.batch) ledger.returnBatch(d.batch);
  const step = p.step + 1;
  const alive = m.w.alive.map((n) => n.node);
  m.s.phase = { name: "recovering", reason, releaseOrphans, step, alive };
  m.s.restoring = undefined; // a restore in flight is superseded: its outcomes are dropped
  // Survivors roll back the step in flight if they applied it; a reducer whose node is dead,
  // or that does not answer (it stopped after a failure), is lost and rebuilt.
  m.emit({
    kind: "abortReducers",
    gen: m.s.generation,
    term: m.s.term,
    step,
    targets: p.reducers.addresses.map((a) => (alive.includes(nodeOf(a)) ? a : null)),
    recovery: { reason, releaseOrphans, step, alive },
  });
}

/** Drops the step in flight everywhere (rolling back reducers that applied it) and starts it again. */
export function abortAndRedo(m: Core, reason: string): void {
  const { p, ledger } = job(m);
  m.log("warn", { step: p.step + 1, attempt: m.s.attempt, reason }, "step aborted; redoing it");
  const ph = m.s.phase;
  for (const d of inFlightDones(ph)) if (d.batch) ledger.returnBatch(d.batch);
  const step = p.step + 1;
  m.s.phase = {
    name: "recovering",
    reason,
    releaseOrphans: false,
    step,
    alive: m.w.alive.map((n) => n.node),
  };
  m.s.attempt++;
  m.emit({
    kind: "abortReducers",
    gen: m.s.generation,
    term: m.s.term,
    step,
    targets: [...p.reducers.addresses],
  });
}

/** The reducers answered an abort (`ok[r]`): redo the step, or rebuild those that did not answer. */
export function onReducersAborted(m: Core, ok: boolean[], recovery: RecoveryContext | undefined): void {
  if (!recovery) {
    if (ok.some((x) => !x)) return recoverReducers(m, "a reducer did not answer the abort");
    return startStep(m);
  }
  const { p } = job(m);
  const gen = p.reducerGen + 1;
  const lost = ok.flatMap((x, r) => (x ? [] : [r]));
  let plan: { spawns: ReducerSpawn[]; trainers: string[] };
  try {
    plan = planRebuild(p, recovery.alive, lost, gen);
  } catch (error) {
    // Nobody holds the parameters any more: the latest complete checkpoint has them.
    if (restorable(p) && m.w.alive.length > 0) return startRestore(m, (error as Error).message);
    return onRecoveryFailed(m, (error as Error).message);
  }
  m.emit({
    kind: "rebuildReducers",
    gen: m.s.generation,
    term: m.s.term,
    reducerGen: gen,
    spawns: plan.spawns,
    addresses: [...p.reducers.addresses],
    bounds: p.reducers.bounds,
    trainers: plan.trainers,
    version: p.step,
    checkpointStep: p.checkpointStep,
    releaseNodes: recovery.releaseOrphans
      ? recovery.alive.filter((n) => !p.members.some((x) => x.node === n))
      : [],
  });
}

/** Reducers are ready again: redo the step in flight. */
export function onReducersRebuilt(m: Core, addresses: string[], replaced: number, reducerGen: number): void {
  const { p } = job(m);
  p.reducers = { addresses, bounds: p.reducers.bounds };
  if (replaced > 0) p.reducerGen = reducerGen;
  m.s.attempt++;
  m.log("info", { replaced, step: p.step + 1 }, "reducers ready; redoing the step in flight");
  m.s.recoveryAttempts = 0;
  m.s.refusedRebuilds = 0;
  startStep(m);
}

/**
 * A recovery failed: nodes may still be dying or joining, so look again shortly, a bounded number
 * of times. When it failed because no trainer could give the parameters (`noParams`) and the job
 * has a complete checkpoint, it restores from that instead: at once when no member is alive (the
 * trainers tried were only guesses on other nodes), else on the third try in a row in which every
 * trainer refused — never on timeouts alone while a member lives: a busy trainer still holds the
 * committed steps a restore would throw away.
 */
export function onRecoveryFailed(m: Core, error: string, noParams = false, timedOut = false): void {
  const ph = m.s.phase;
  const p = m.s.p;
  if (noParams && p && ph.name === "recovering" && restorable(p)) {
    const memberAlive = p.members.some((x) => ph.alive.includes(x.node));
    if (memberAlive && timedOut) m.s.refusedRebuilds = 0;
    else m.s.refusedRebuilds++;
    if (!memberAlive || m.s.refusedRebuilds > 2) {
      m.s.refusedRebuilds = 0;
      m.s.recoveryAttempts++;
      return startRestore(m, error);
    }
  }
  const reason = ph.name === "recovering" ? ph.reason : "";
  m.log("warn", { err: error }, `coordinator: reducer recovery (${reason}) failed; going on without it`);
  if (++m.s.recoveryAttempts > RECOVERY_RETRIES)
    return m.fail(`reducer recovery failed ${RECOVERY_RETRIES} times: ${error}`);
  m.emit({ kind: "timer", id: "recovery-retry", ms: RECOVERY_RETRY_MS });
}

/** The retry timer fired: recover again if still recovering. */
export function onRecoveryRetry(m: Core): void {
  const ph = m.s.phase;
  if (ph.name === "recovering") recoverReducers(m, ph.reason, ph.releaseOrphans);
}
