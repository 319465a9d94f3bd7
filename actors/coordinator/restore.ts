import { ShardLedger } from "../ledger/ledger.js";
import { jobNames } from "../job/names.js";
import { type Core, job, nodeOf } from "./model.js";
import type { CheckpointManifest } from "./manifest.js";
import { reducerName } from "./placement.js";
import { pendRecovery, persist, record } from "./records.js";
import type { PersistedJob } from "./state.js";
import { removeMember } from "./elastic.js";
import { onRecoveryFailed } from "./recovery.js";
import { startStep } from "./step.js";

/**
 * Restoring a job from its latest complete checkpoint, when no live trainer holds the parameters
 * (every process that held them is gone). The job rolls back to the checkpoint's step: its ledger
 * (the leases of the lost steps go back to the pool, so every sample is still counted exactly
 * once per epoch in committed steps), its loss and evaluations; every reducer is rebuilt from
 * its part; trainers then join as at any step boundary and fetch the restored parameters from
 * the reducers. The steps after the checkpoint are redone under a new attempt, and counted in
 * the result's `stepsLost`.
 * @module
 */

/** Whether the job has a complete checkpoint to restore from. */
export function restorable(p: PersistedJob): boolean {
  return p.checkpointStep !== null || (p.checkpoints?.length ?? 0) > 0;
}

/** No live trainer holds the parameters: read the newest complete checkpoint (the shell checks it). */
export function startRestore(m: Core, why: string): void {
  const { p } = job(m);
  const token = ++m.s.restoreToken;
  m.s.restoring = { token };
  m.log(
    "warn",
    { why, step: p.step, checkpointStep: p.checkpointStep },
    "no live trainer holds the parameters; restoring the job from its latest complete checkpoint",
  );
  m.emit({ kind: "readCheckpoint", gen: m.s.generation, token, maxStep: p.step });
}

/** Why `manifest` cannot be this job's state to roll back to, or undefined when it fits. */
export function manifestMisfit(p: PersistedJob, manifest: CheckpointManifest): string | undefined {
  if (manifest.job !== p.job) return `checkpoint of job ${manifest.job}, not ${p.job}`;
  if (manifest.step > p.step) return `checkpoint of step ${manifest.step} is ahead of the job (${p.step})`;
  if (manifest.paramCount !== p.paramCount)
    return `checkpoint of ${manifest.paramCount} parameters, the job has ${p.paramCount}`;
  const bounds = [...manifest.parts.map((x) => x.offset), manifest.paramCount];
  if (bounds.join(",") !== p.reducers.bounds.join(","))
    return `checkpoint reducer bounds [${bounds.join(",")}] differ from the job's [${p.reducers.bounds.join(",")}]`;
  return undefined;
}

/** The checkpoint checked out: spawn every reducer anew and load it from its part. */
export function onCheckpointRead(
  m: Core,
  token: number,
  manifest: CheckpointManifest,
  refused: string[],
): void {
  if (m.s.restoring?.token !== token || m.s.phase.name !== "recovering") return void m.s.ignored++;
  const { p } = job(m);
  for (const reason of refused)
    m.log("warn", { err: reason }, "checkpoint refused; falling back to an older one");
  const misfit = manifestMisfit(p, manifest);
  if (misfit) return restoreFailed(m, token, misfit);
  const alive = m.w.alive.map((n) => n.node).sort();
  if (alive.length === 0) return restoreFailed(m, token, "no live node to place the restored reducers on");
  m.s.restoring = { token, manifest };
  const gen = p.reducerGen + 1;
  const stale = (node: string): boolean => alive.includes(node);
  m.emit({
    kind: "restoreReducers",
    gen: m.s.generation,
    term: m.s.term,
    token,
    step: manifest.step,
    spawns: manifest.parts.map(({ r }) => ({
      r,
      node: alive[r % alive.length] ?? "",
      name: reducerName(p.job, r, gen),
    })),
    bounds: p.reducers.bounds,
    parts: manifest.parts,
    // Whatever still runs of the abandoned timeline: reducers, and the trainers and loaders of
    // members and joiners (they hold later versions; their nodes join again from the restored one).
    stop: [
      ...p.reducers.addresses.filter((a) => stale(nodeOf(a))),
      ...[...p.members.map((x) => x.node), ...m.s.readyJoiners.map((x) => x.node), ...m.s.joining]
        .filter(stale)
        .flatMap((n) => [`${n}/${jobNames.trainer(p.job)}`, `${n}/${jobNames.loader(p.job)}`]),
    ],
  });
}

/** The restore failed (no usable checkpoint, a reducer refused its part): look again shortly, a bounded number of times. */
export function restoreFailed(m: Core, token: number, error: string): void {
  if (m.s.restoring?.token !== token) return void m.s.ignored++;
  m.s.restoring = undefined;
  onRecoveryFailed(m, `restore from a checkpoint: ${error}`);
}

/** Every reducer holds the checkpoint: roll the job back to its step, persist, and go on. */
export function onReducersRestored(m: Core, token: number, addresses: string[]): void {
  const manifest = m.s.restoring?.token === token ? m.s.restoring.manifest : undefined;
  if (!manifest || m.s.phase.name !== "recovering") return void m.s.ignored++;
  m.s.restoring = undefined;
  const { p } = job(m);
  const from = p.step;
  const step = manifest.step;
  // Lease ids go on from the live ledger's: the abandoned timeline's must not come back.
  const ledger = ShardLedger.restore(manifest.state.ledger, m.s.ledger?.leaseSeq ?? 0);
  ledger.revokeAll(); // leases of the lost steps (and the step in flight) go back to the pool
  m.s.ledger = ledger;
  p.step = step;
  for (const x of [...p.members])
    removeMember(m, x.node, "leave", `holds step ${from}, the job restored ${step}`);
  p.ledger = ledger.snapshot();
  p.lastLoss = manifest.state.lastLoss;
  p.evals = p.evals.filter((e) => e.step <= step); // later ones scored the abandoned timeline
  p.reducers = { addresses, bounds: p.reducers.bounds };
  p.reducerGen++;
  p.stepsLost = (p.stepsLost ?? 0) + (from - step);
  p.checkpointStep = step;
  p.checkpoints = (p.checkpoints ?? []).filter((c) => c <= step);
  if (!p.checkpoints.includes(step)) p.checkpoints = [...p.checkpoints, step].sort((a, b) => a - b);
  p.lastStepEvent = undefined;
  p.epoch++;
  m.s.recentSteps = [];
  m.s.hashes.clear();
  m.s.checkpointAcks.clear();
  m.s.readyJoiners = [];
  m.s.joining.clear();
  m.s.restores++;
  m.s.attempt++;
  m.s.recoveryAttempts = 0;
  const detail = `restored from the checkpoint of step ${step}; steps ${step + 1}..${from} are redone`;
  pendRecovery(m, record(m, { kind: "failover", node: m.cfg.nodeId, detail }));
  persist(m);
  startStep(m);
}
