import type { JobEvent } from "../../messages/index.js";
import type { JobRecord } from "../../runtime/cluster/jobs.js";
import {
  CHANGE_RECORDS_HEAD,
  CHANGE_RECORDS_TAIL,
  QUIET_RECORDS_HEAD,
  QUIET_RECORDS_TAIL,
  RECORD_THROTTLE_MS,
  type Core,
  elapsed,
  job,
} from "./model.js";
import type { MembershipRecord, PersistedJob } from "./state.js";
import { sendCommitIfDurable } from "./step.js";
import { onLeaseLost } from "./takeover.js";
import { unplacedNodes } from "./data-checks.js";

function running(m: Core): PersistedJob {
  if (!m.s.p) throw new Error(`coordinator: no job state in phase ${m.s.phase.name}`);
  return m.s.p;
}

/** Appends a membership record; joins and stragglers are announced now, losses once recovered. */
export function record(m: Core, r: Omit<MembershipRecord, "step" | "t" | "at">): MembershipRecord {
  const p = running(m);
  const rec: MembershipRecord = { ...r, step: p.step, t: elapsed(m), at: m.w.now };
  p.membership.push(rec);
  boundRecords(m, p, rec.kind);
  if (r.kind !== "death" && r.kind !== "leave" && r.kind !== "failover") emitMembership(m, rec);
  else m.log("warn", { ...rec }, `member ${r.kind}`);
  return rec;
}

/** Kinds that change nothing of the membership: the result's `membershipChanges` leaves them out. */
export const QUIET: ReadonlySet<MembershipRecord["kind"]> = new Set(["straggler", "suspect"]);

/**
 * Keeps the first and the latest records of each class (quiet: stragglers, suspects; changes: the
 * rest), dropping the oldest of the ones between, and counts what it drops in the persisted state
 * so that `membershipChanges` stays exact. Called after each append, so at most one record goes.
 */
function boundRecords(m: Core, p: PersistedJob, appended: MembershipRecord["kind"]): void {
  const quiet = QUIET.has(appended);
  const [head, tail] = quiet
    ? [QUIET_RECORDS_HEAD, QUIET_RECORDS_TAIL]
    : [CHANGE_RECORDS_HEAD, CHANGE_RECORDS_TAIL];
  let seen = 0;
  let drop = -1;
  for (let i = 0; i < p.membership.length; i++) {
    const rec = p.membership[i];
    if (!rec || QUIET.has(rec.kind) !== quiet) continue;
    if (seen === head) drop = i;
    seen++;
  }
  if (seen <= head + tail || drop < 0) return;
  p.membership.splice(drop, 1);
  const dropped = (p.membershipDropped ??= { quiet: 0, changes: 0 });
  if (quiet) dropped.quiet++;
  else dropped.changes++;
  if ((quiet ? dropped.quiet : dropped.changes) === 1)
    m.log(
      "warn",
      { kept: head + tail, quiet },
      "membership records past the bound are dropped (the oldest after the first ones) and counted",
    );
}

/** A loss whose recovery time is measured at the next committed step. */
export function pendRecovery(m: Core, rec: MembershipRecord): void {
  m.s.pendingRecovery.push({ record: rec, at: m.w.now });
}

/** At a committed step: the losses pending are recovered; announce them with their recovery time. */
export function announceRecoveries(m: Core): void {
  for (const { record: rec, at } of m.s.pendingRecovery) rec.recoverySeconds = (m.w.now - at) / 1000;
  for (const { record: rec } of m.s.pendingRecovery) emitMembership(m, rec);
  m.s.pendingRecovery = [];
}

function emitMembership(m: Core, rec: MembershipRecord): void {
  m.publish({
    type: "job.membership",
    job: m.cfg.job,
    step: rec.step,
    t: rec.t,
    at: rec.at,
    event: { kind: rec.kind, node: rec.node, detail: rec.detail, recoverySeconds: rec.recoverySeconds },
  });
}

/** Compares the parameter hashes the members reported for `version`, and announces the check. */
export function checkHashes(m: Core, version: number): void {
  const got = m.s.hashes.get(version);
  if (!got) return;
  m.s.hashes.delete(version);
  const { p } = job(m);
  const hashes = Object.fromEntries(got);
  const consistent = new Set(got.values()).size === 1;
  p.hashChecks.checked++;
  if (!consistent) {
    p.hashChecks.consistent = false;
    p.hashChecks.mismatches.push(`version ${version}: ${JSON.stringify(hashes)}`);
    m.log("error", { version, hashes }, "replicas disagree on the parameters");
  }
  m.publish({ type: "job.hash", job: m.cfg.job, version, consistent, hashes });
}

/**
 * Writes the job's state (the shell retries through NATS restarts). `announce`, a step event, is
 * published once the write is durable — even if the lease was lost meanwhile; a successor
 * re-announces the last durable step as a replay, in case this holder died before announcing.
 */
export function persist(m: Core, announce?: JobEvent): void {
  const seq = m.s.persist.seq + 1;
  m.s.persist = { seq, status: "pending" };
  if (announce) m.s.announce.set(seq, announce);
  m.emit({ kind: "persist", gen: m.s.generation, seq, job: running(m) });
}

/** A state write landed. */
export function onPersisted(m: Core, gen: number, seq: number): void {
  const event = m.s.announce.get(seq);
  m.s.announce.delete(seq);
  if (event) m.publish(event);
  if (m.s.persist.seq === seq) m.s.persist = { seq, status: "ok" };
  if (gen === m.s.generation) sendCommitIfDurable(m);
}

/** A state write failed; fenced by a successor's claim, this holder is deposed and stops acting. */
export function onPersistFailed(m: Core, gen: number, seq: number, fenced: boolean, error: string): void {
  m.s.announce.delete(seq);
  if (m.s.persist.seq === seq) m.s.persist = { seq, status: "failed", error };
  if (gen !== m.s.generation) return;
  if (fenced) return onLeaseLost(m, error);
  sendCommitIfDurable(m); // a commit waiting for this write fails the job
}

/** The job record for `flock jobs`. */
export function jobRecord(m: Core): JobRecord {
  const p = running(m);
  return {
    id: m.cfg.job,
    state: p.state === "running" ? m.s.phase.name : p.state,
    step: p.step,
    epoch: p.epoch,
    members: p.members.map((x) => x.node),
    updatedAt: m.w.now,
    ...unplaced(m),
  };
}

/** The record's `unplaced` (live nodes refused for the data, as last checked), or nothing. */
function unplaced(m: Core): Pick<JobRecord, "unplaced"> {
  const nodes = unplacedNodes(m);
  return nodes.length > 0 ? { unplaced: nodes } : {};
}

/** Writes the job record at most every {@link RECORD_THROTTLE_MS}. */
export function writeRecordThrottled(m: Core): void {
  if (m.w.now - m.s.lastRecordWrite < RECORD_THROTTLE_MS) return;
  m.s.lastRecordWrite = m.w.now;
  m.emit({ kind: "writeRecord", record: jobRecord(m) });
}
