import { stepSummary } from "../../messages/index.js";
import { ShardLedger } from "../ledger/ledger.js";
import { jobNames } from "../job/names.js";
import { RECENT_STEPS, STANDBY_RETRY_MS, type Core, type SpawnPurpose, acting } from "./model.js";
import { removeMember, staleMembers } from "./elastic.js";
import { place } from "./placement.js";
import { pendRecovery, record } from "./records.js";
import { recoverReducers } from "./recovery.js";
import { dataReady } from "./data-checks.js";
import type { PersistedJob } from "./state.js";

/** The lease is ours under `term`: claim the job's state (read it and write it back under this term). */
export function onAcquired(m: Core, term: number): void {
  m.s.term = term;
  m.emit({ kind: "claim", gen: m.s.generation, term });
}

/** The claim read the job's state: a fresh job is placed, a running one taken over, an ended one stood down. */
export function onClaimed(m: Core, saved: PersistedJob | undefined): void {
  if (!saved) return m.s.p ? m.fail("the job's state vanished from the store") : place(m);
  if (saved.state !== "running") {
    m.s.phase = { name: "done" };
    m.log("info", { state: saved.state }, "job already ended; standby stands down");
    // A failed job has no TrainResult: its followers hear job.failed, as from the coordinator that failed it.
    m.publish(
      saved.state === "finished" && saved.result
        ? { type: "job.finished", job: m.cfg.job, result: saved.result }
        : { type: "job.failed", job: m.cfg.job, error: saved.error ?? `job ${saved.state}` },
    );
    m.emit({ kind: "stop" });
    return;
  }
  takeOver(m, saved);
}

/** Without the state this holder cannot act: it fails (and so resigns) so that a candidate tries again. */
export function onClaimFailed(m: Core, error: string): void {
  m.log("error", { err: error }, "could not read the job's state; resigning the lease");
  m.fail(`job state unreadable: ${error}`);
}

/** A standby took over: restore from the record, roll back the step in flight, and go on. */
export function takeOver(m: Core, saved: PersistedJob): void {
  m.s.phase = {
    name: "recovering",
    reason: "takeover",
    releaseOrphans: true,
    step: saved.step + 1,
    alive: [],
  };
  const p: PersistedJob = { ...saved, term: m.s.term };
  m.s.p = p;
  // The claim made `saved` the durable record. A write of this coordinator's own earlier term
  // (one that re-acquired its lease) was dropped with that term: the next commit must not wait on it.
  // A new seq: late results of writes issued before the takeover no longer match it.
  m.s.persist = { seq: m.s.persist.seq + 1, status: "ok" };
  const last = saved.lastStepEvent;
  if (last?.type === "job.step") {
    m.publish({ ...last, replay: true });
    m.s.recentSteps = [...(last.earlier ?? []), stepSummary(last)].slice(-RECENT_STEPS);
  }
  const ledger = ShardLedger.restore(saved.ledger);
  m.s.ledger = ledger;
  pendRecovery(
    m,
    record(m, {
      kind: "failover",
      node: m.cfg.nodeId,
      detail: `coordinator taken over at step ${saved.step} (term ${m.s.term})`,
    }),
  );
  for (const { member, detail } of staleMembers(p.members, m.w.alive, true))
    removeMember(m, member.node, "death", `${detail} at takeover`);
  // The step in flight is redone; whatever it leased goes back to the pool and loaders drop it (new term).
  // Attempts of the new term never collide with the old coordinator's (reducers key buffers by them).
  m.s.attempt = m.s.term * 1000;
  ledger.revokeAll();
  spawnEvaluator(m);
  ensureStandby(m);
  recoverReducers(m, `takeover by ${m.cfg.nodeId}`, true);
}

/**
 * The lease is gone (renewal failed, or another candidate took over): stop acting at once — work
 * in flight is dropped (generation bump) — but keep campaigning. Whoever holds the lease next
 * takes over from the persisted state and redoes the step in flight.
 */
export function onLeaseLost(m: Core, reason: string): void {
  if (m.s.phase.name === "done") return;
  m.log("warn", { reason }, "coordinator lost its lease; it stops acting and campaigns again");
  m.s.phase = { name: "campaigning" };
  m.s.generation++;
  m.s.standby = undefined; // its placement may have been dropped with the generation: check again
  // Admissions in flight were dropped with the generation too; their nodes are candidates again.
  m.s.joining.clear();
  m.s.readyJoiners = [];
}

/**
 * Keeps a standby coordinator on another live node, so that losing this holder's node never
 * orphans the job: placed when the job is placed or taken over, and again when the standby's
 * node dies (or restarts: a new incarnation) or a node joins a job that had none to spare.
 */
export function ensureStandby(m: Core): void {
  if (!m.s.p || !acting(m.s.phase)) return;
  const others = m.w.alive
    .filter((n) => n.node !== m.cfg.nodeId)
    .sort((a, b) => a.node.localeCompare(b.node));
  const current = m.s.standby;
  if (current && others.some((n) => n.node === current.node && n.inc === current.inc)) return;
  if (current) m.log("warn", { node: current.node }, "the standby coordinator's node is gone");
  m.s.standby = undefined;
  const target = others[0];
  if (!target || m.w.now < m.s.standbyRetryAt) return;
  const token = ++m.s.standbyToken;
  m.s.standby = { node: target.node, inc: target.inc, token };
  m.emit({
    kind: "spawn",
    gen: m.s.generation,
    purpose: { what: "standby", token },
    node: target.node,
    actorKind: "flock.coordinator",
    name: jobNames.coordinator(m.cfg.job),
  });
}

/**
 * Where this term's evaluator goes: this node, unless the job reads `file://` data this node was
 * not found to hold; then the first member's node (members were checked when they were placed).
 */
export function evaluatorNode(m: Core): string {
  if (dataReady(m, m.cfg.nodeId)) return m.cfg.nodeId;
  return m.s.p?.members.map((x) => x.node).sort()[0] ?? m.cfg.nodeId;
}

/** Places this term's evaluator (on {@link evaluatorNode}). */
export function spawnEvaluator(m: Core): void {
  m.emit({
    kind: "spawn",
    gen: m.s.generation,
    purpose: { what: "evaluator" },
    node: evaluatorNode(m),
    actorKind: "flock.evaluator",
    name: jobNames.evaluator(m.cfg.job, m.s.term),
  });
}

/** A spawn for the evaluator or the standby landed. */
export function onSpawned(m: Core, purpose: SpawnPurpose, address: string): void {
  if (purpose.what === "evaluator") {
    m.s.evaluator = address;
    return;
  }
  if (m.s.standby?.token !== purpose.token) return;
  m.s.standby.address = address;
  m.log("info", { node: m.s.standby.node }, "standby coordinator in place");
}

/** A spawn failed: the evaluator is spawned again when an evaluation needs it; the standby after a pause. */
export function onSpawnFailed(m: Core, purpose: SpawnPurpose, error: string): void {
  m.log("warn", { err: error }, `coordinator: ${purpose.what} placement failed; going on without it`);
  if (purpose.what === "evaluator") {
    m.s.evaluator = undefined;
    return;
  }
  if (m.s.standby?.token === purpose.token) m.s.standby = undefined;
  m.s.standbyRetryAt = m.w.now + STANDBY_RETRY_MS;
}
