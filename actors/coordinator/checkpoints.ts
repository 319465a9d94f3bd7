import { epochSeed, jobNames } from "../job/names.js";
import type { CoordinatorCommand } from "./protocol.js";
import { type Core, job } from "./model.js";
import { type CheckpointManifest, type ManifestState, retain } from "./manifest.js";

type Checkpointed = Extract<CoordinatorCommand, { type: "coord.checkpointed" }>;

/** Checkpoints asked for that may still complete (a reducer that never answers leaves one partial). */
const PENDING_CHECKPOINTS = 4;

/**
 * Right after committing `step`, when a checkpoint is due: snapshot the job state at the step
 * (the live ledger moves on with the next step) and ask every reducer to write its part.
 */
export function requestCheckpoint(m: Core, step: number): void {
  const { p, ledger } = job(m);
  const state: ManifestState = {
    epoch: p.epoch,
    reducerGen: p.reducerGen,
    ledger: p.ledger, // the snapshot taken at this commit; never mutated (each commit takes a new one)
    rng: {
      seed: m.cfg.spec.seed,
      dataEpoch: ledger.epoch,
      orderSeed: epochSeed(m.cfg.spec.seed, ledger.epoch),
      nextPosition: p.ledger.next,
    },
    lastLoss: p.lastLoss,
    evals: p.evals.filter((e) => e.step <= step),
  };
  m.s.checkpointAcks.set(step, { state, parts: new Map() });
  for (const old of [...m.s.checkpointAcks.keys()].sort((a, b) => a - b))
    if (m.s.checkpointAcks.size > PENDING_CHECKPOINTS) m.s.checkpointAcks.delete(old);
  for (const to of p.reducers.addresses)
    m.emit({ kind: "tell", to, msg: { type: "reducer.checkpoint", term: m.s.term, step } });
}

/**
 * A reducer wrote its part; once every reducer did, the manifest is written (last). Each reducer
 * index counts once (a duplicate acknowledgement must not stand in for a reducer that never
 * wrote), and only for a checkpoint this coordinator asked for and still wants.
 */
export function onCheckpointed(m: Core, msg: Checkpointed): void {
  const { p } = m.s;
  if (msg.term !== m.s.term || !p) return void m.s.ignored++;
  const reducers = p.reducers.addresses.length;
  const pending = m.s.checkpointAcks.get(msg.step);
  const newer = p.checkpointStep === null || msg.step > p.checkpointStep;
  if (!Number.isInteger(msg.r) || msg.r < 0 || msg.r >= reducers || !pending || !newer)
    return void m.s.ignored++;
  if (pending.parts.has(msg.r)) return void m.s.ignored++;
  pending.parts.set(msg.r, { bytes: msg.bytes, sha256: msg.sha256 });
  if (pending.parts.size < reducers) return;
  // Older partial checkpoints can no longer become the newest: stop waiting for them.
  for (const step of [...m.s.checkpointAcks.keys()]) if (step <= msg.step) m.s.checkpointAcks.delete(step);
  m.emit({
    kind: "writeManifest",
    gen: m.s.generation,
    restores: m.s.restores,
    manifest: manifestOf(m, msg.step, pending.state, pending.parts),
  });
}

function manifestOf(
  m: Core,
  step: number,
  state: ManifestState,
  parts: Map<number, { bytes: number; sha256: string }>,
): CheckpointManifest {
  const { p } = job(m);
  const bounds = p.reducers.bounds;
  return {
    format: 1,
    job: m.cfg.job,
    step,
    term: m.s.term,
    writtenAt: m.w.now,
    paramCount: p.paramCount,
    parts: p.reducers.addresses.map((_, r) => {
      const offset = bounds[r] ?? 0;
      const written = parts.get(r) ?? { bytes: 0, sha256: "" };
      const name = jobNames.checkpoint(m.cfg.job, step, r);
      return { r, name, offset, length: (bounds[r + 1] ?? offset) - offset, ...written };
    }),
    state,
  };
}

/**
 * The manifest of `step` is stored: the checkpoint is complete and usable for a restore. Only
 * now does `checkpointStep` move; retention then deletes what is no longer kept. An outcome from
 * before a restore belongs to the abandoned timeline and is dropped.
 */
export function onManifestWritten(m: Core, restores: number, step: number): void {
  const { p } = m.s;
  if (!p || restores !== m.s.restores || (p.checkpointStep !== null && step <= p.checkpointStep))
    return void m.s.ignored++;
  p.checkpointStep = step;
  p.checkpoints = retain(p.checkpoints ?? [], step, m.cfg.spec.keepCheckpoints);
  m.log("info", { step, kept: p.checkpoints }, "checkpoint complete");
  m.emit({ kind: "pruneCheckpoints", keep: [...p.checkpoints] });
}

/** The manifest write failed: the previous checkpoint stays the latest (its parts are pruned later). */
export function onManifestFailed(m: Core, step: number, error: string): void {
  m.log(
    "warn",
    { step, err: error },
    "checkpoint manifest write failed; the previous checkpoint stays the latest",
  );
}
