import type { JobEvent } from "../../messages/index.js";
import { stepSummary } from "../../messages/index.js";
import type { CoordinatorCommand, StepDone } from "./protocol.js";
import {
  COMMIT_DEADLINE_MS,
  EMPTY_STEP_RETRY_MS,
  MAX_BACKENDS,
  RECENT_STEPS,
  type Core,
  type Phase,
  job,
} from "./model.js";
import { batchShares } from "./placement.js";
import { balancedShares, observe } from "./balance.js";
import type { Member, PersistedJob } from "./state.js";
import { admitJoiners } from "./elastic.js";
import { abortAndRedo } from "./recovery.js";
import { finish, requestEvalAndCheckpoint, validReducer } from "./progress.js";
import { announceRecoveries, checkHashes, persist, record, writeRecordThrottled } from "./records.js";
import { localSteps, roundSamples } from "../job/sync.js";

type Committing = Extract<Phase, { name: "committing" }>;
type Ahead = NonNullable<Committing["ahead"]>;

/**
 * The version step `step` is computed on: the one before it when synchronous, `staleness` more
 * before with bounded staleness (never before 0). Fixed by the step alone, whatever the timing,
 * so a run is reproducible and every trainer computes on the same parameters.
 */
export function stepVersion(m: Core, step: number): number {
  return Math.max(0, step - 1 - m.cfg.spec.sync.staleness);
}

/** Every member's answer to the step in flight and to the step started ahead of its commit. */
export function inFlightDones(ph: Phase): StepDone[] {
  if (ph.name === "stepping") return [...ph.done.values()];
  if (ph.name === "committing") return [...ph.done.values(), ...(ph.ahead?.done.values() ?? [])];
  return [];
}

/** Starts the next step (or redoes the one in flight): joiners first, then finish or pause, then tell the trainers. */
export function startStep(m: Core): void {
  const name = m.s.phase.name;
  if (name === "done" || name === "finishing" || name === "campaigning") return;
  admitJoiners(m);
  const { p, ledger } = job(m);
  if (ledger.finished) return finish(m);
  if (p.members.length < m.cfg.spec.minWorkers) {
    if (name !== "paused")
      m.log(
        "warn",
        { members: p.members.length, minWorkers: m.cfg.spec.minWorkers },
        "job paused: below minWorkers",
      );
    m.s.phase = { name: "paused" };
    return;
  }
  m.s.phase = { name: "stepping", startedAt: m.w.now, done: new Map() };
  tellStep(m, p.step + 1);
}

/** Tells every member to compute `step` (on {@link stepVersion}) at the current attempt. */
function tellStep(m: Core, step: number): void {
  const { p } = job(m);
  const reportHash = (step - 1) % m.cfg.spec.hashEvery === 0;
  const stale = m.cfg.spec.sync.staleness > 0 ? { on: stepVersion(m, step) } : {};
  for (const { member, size } of stepShares(m, p))
    m.emit({
      kind: "tell",
      to: member.trainer,
      msg: {
        type: "trainer.step",
        term: m.s.term,
        step,
        attempt: m.s.attempt,
        batchSize: size,
        loader: member.loader,
        reducers: p.reducers,
        reportHash,
        ...stale,
      },
    });
}

/**
 * The members' batch sizes of the step told now: equal shares, or with `balance: "throughput"`
 * shares by measured samples/s. Shares change only here, when a step is told; the balancing state
 * (with the shares told) is part of the persisted job, so a successor goes on from it.
 */
function stepShares(m: Core, p: PersistedJob): Array<{ member: Member; size: number }> {
  const samples = roundSamples(m.cfg.spec);
  if (m.cfg.spec.balance !== "throughput") return batchShares(p.members, samples);
  const nodes = p.members.map((x) => x.node);
  const { shares, state } = balancedShares(nodes, samples, p.balance ?? []);
  p.balance = state;
  return shares.flatMap(({ node, size }) => {
    const member = p.members.find((x) => x.node === node);
    return member ? [{ member, size }] : [];
  });
}

/**
 * Feeds an accepted answer (a member's first for the step) to the balancing, with the time the
 * coordinator itself saw from telling the step to now (a floor under the time the member claims).
 */
function measure(m: Core, p: PersistedJob, msg: StepDone): void {
  if (m.cfg.spec.balance !== "throughput" || msg.n === 0) return;
  const ph = m.s.phase;
  const startedAt =
    ph.name === "stepping" ? ph.startedAt : ph.name === "committing" ? ph.ahead?.startedAt : undefined;
  p.balance = observe(p.balance ?? [], {
    node: msg.member,
    n: msg.n,
    computeMs: msg.computeMs,
    ...(startedAt === undefined ? {} : { observedMs: m.w.now - startedAt }),
  });
}

/**
 * With staleness, the next step starts while this one commits: it is computed on the version
 * before the one being committed, so nothing waits for the commit. Not when joiners are ready (they
 * are admitted at a step boundary where nothing runs ahead) or the job could not go on anyway.
 */
function startAhead(m: Core, ph: Committing): void {
  const { p } = job(m);
  if (m.cfg.spec.sync.staleness < 1 || m.s.readyJoiners.length > 0) return;
  if (p.members.length < m.cfg.spec.minWorkers) return;
  ph.ahead = { startedAt: m.w.now, done: new Map() };
  tellStep(m, p.step + 2);
}

/**
 * After a commit, the step started ahead becomes the step in flight (it may be complete already).
 * A boundary where joiners wait, the job pauses or the ledger is done drops it and starts afresh.
 */
function promoteAhead(m: Core, ahead: Ahead): void {
  const { p, ledger } = job(m);
  if (ledger.finished || m.s.readyJoiners.length > 0 || p.members.length < m.cfg.spec.minWorkers) {
    for (const d of ahead.done.values()) if (d.batch) ledger.returnBatch(d.batch);
    // A new attempt: answers of the dropped one are told apart, and the reducers drop their slices.
    m.s.attempt++;
    return startStep(m);
  }
  m.s.phase = { name: "stepping", startedAt: ahead.startedAt, done: ahead.done, ahead: true };
  if (p.members.every((x) => ahead.done.has(x.node))) commit(m);
}

/** A trainer finished its part of the step (or answered late, for an older attempt). */
export function onDone(m: Core, msg: StepDone): void {
  const ph = m.s.phase;
  const { p, ledger } = m.s;
  const live = msg.term === m.s.term && msg.attempt === m.s.attempt;
  const next = (p?.step ?? 0) + 1;
  const target =
    live && ph.name === "stepping" && msg.step === next
      ? ph.done
      : live && ph.name === "committing" && msg.step === next + 1
        ? ph.ahead?.done
        : undefined;
  const member = p?.members.find((x) => x.node === msg.member);
  if (!target || !member || !p || !ledger) {
    // A straggler's late answer, or one from an aborted attempt: its batch did not count.
    if (msg.batch && ledger) ledger.returnBatch(msg.batch, msg.member);
    m.s.ignored++;
    return;
  }
  if (msg.batch) {
    try {
      ledger.check(msg.batch, msg.member);
    } catch (error) {
      // A batch of a revoked lease (its loader had it in flight): its positions are back in the pool.
      m.log("warn", { member: msg.member, err: error }, "batch outside any live lease; left out of the step");
      msg = { ...msg, batch: null, n: 0 };
    }
    if (msg.n === 0 && msg.batch) {
      ledger.returnBatch(msg.batch);
      msg = { ...msg, batch: null };
    }
  }
  if (!target.has(msg.member)) measure(m, p, msg);
  target.set(msg.member, msg);
  if (msg.backend && !p.backends.includes(msg.backend) && p.backends.length < MAX_BACKENDS)
    p.backends = [...p.backends, msg.backend].sort();
  if (msg.hash) {
    const version = stepVersion(m, msg.step);
    const got = m.s.hashes.get(version) ?? new Map<string, string>();
    got.set(msg.member, msg.hash);
    m.s.hashes.set(version, got);
  }
  if (ph.name === "stepping" && p.members.every((x) => ph.done.has(x.node))) commit(m);
}

/** Every member answered (or was left out): fix the commit set, and commit once the last state write is durable. */
export function commit(m: Core): void {
  const ph = m.s.phase;
  if (ph.name !== "stepping") return;
  const { p, ledger } = job(m);
  const entries = [...ph.done.values()].filter((d) => p.members.some((x) => x.node === d.member));
  const contributing = entries.flatMap((d) => (d.n > 0 && d.batch ? [{ d, batch: d.batch }] : []));
  const total = contributing.reduce((a, { d }) => a + d.n, 0);
  if (total === 0 && ph.ahead) {
    // Started ahead while the step before took the epoch's last samples: start it again, now.
    m.s.attempt++;
    return startStep(m);
  }
  if (total === 0) {
    // Nobody had samples, yet the epoch is not done: whatever is still leased is held by loaders
    // that lost it (restarted, or left) — a loader holding positions always hands out a batch.
    ledger.revokeAll();
    m.s.attempt++;
    m.emit({ kind: "timer", id: "empty-step", ms: EMPTY_STEP_RETRY_MS });
    return;
  }
  // Reducers may run at most one step ahead of the persisted record (they keep one step of undo,
  // and a takeover rolls that step back): so commit s+1 waits for the record of step s.
  m.s.phase = {
    name: "committing",
    stepStartedAt: ph.startedAt,
    startedAt: m.w.now,
    done: ph.done,
    contributors: contributing.map(({ d }) => d.member).sort(),
    batches: contributing.map(({ batch }) => batch),
    total,
    lossSum: contributing.reduce((a, { d }) => a + d.lossSum, 0),
    applied: new Set(),
    awaitSeq: m.s.persist.seq,
    sent: false,
  };
  sendCommitIfDurable(m);
  if (m.s.phase.name === "committing") startAhead(m, m.s.phase);
}

/** Sends the commit to the reducers once the write it waits for landed; fails the job if that write failed. */
export function sendCommitIfDurable(m: Core): void {
  const ph = m.s.phase;
  if (ph.name !== "committing" || ph.sent) return;
  const w = m.s.persist;
  if (w.seq === ph.awaitSeq && w.status === "pending") return;
  if (w.seq === ph.awaitSeq && w.status === "failed")
    return m.fail(`persisting the committed state failed: ${w.error ?? "unknown error"}`);
  ph.sent = true;
  const { p } = job(m);
  for (const address of p.reducers.addresses)
    m.emit({
      kind: "tell",
      to: address,
      msg: {
        type: "reducer.commit",
        term: m.s.term,
        step: p.step + 1,
        attempt: m.s.attempt,
        contributors: ph.contributors,
        total: ph.total,
      },
    });
}

/** Whether a reducer's answer is about the commit in flight (not an older step, attempt or term). */
export function currentCommit(
  m: Core,
  msg: { term: number; step: number; attempt: number },
): Committing | undefined {
  const ph = m.s.phase;
  if (ph.name !== "committing") return undefined;
  const current = msg.term === m.s.term && msg.step === (m.s.p?.step ?? 0) + 1 && msg.attempt === m.s.attempt;
  return current ? ph : undefined;
}

/** A reducer applied the commit: audit its summed set; once all did, the step is committed. */
export function onApplied(m: Core, msg: Extract<CoordinatorCommand, { type: "coord.applied" }>): void {
  const ph = currentCommit(m, msg);
  if (!ph) return void m.s.ignored++;
  const { p } = job(m);
  // Only a reducer of the job counts, and each once: a forged or repeated `r` cannot complete a commit.
  if (!validReducer(msg.r, p.reducers.addresses.length) || ph.applied.has(msg.r)) return void m.s.ignored++;
  const expected = ph.contributors.join(",");
  if (msg.summed.join(",") !== expected) {
    p.commitAudit.mismatches.push(
      `step ${msg.step} reducer ${msg.r} summed [${msg.summed.join(",")}], commit set [${expected}]`,
    );
    m.log(
      "error",
      { step: msg.step, r: msg.r, summed: msg.summed, contributors: ph.contributors },
      "a reducer summed other slices than the commit set",
    );
  }
  p.commitAudit.checked++;
  ph.applied.add(msg.r);
  if (ph.applied.size === p.reducers.addresses.length) committed(m, ph);
}

/** A reducer lacks slices of the commit set: abort and redo the step. */
export function onMissing(m: Core, msg: Extract<CoordinatorCommand, { type: "coord.missing" }>): void {
  if (!currentCommit(m, msg)) return void m.s.ignored++;
  abortAndRedo(m, `reducer ${msg.r}: ${msg.reason} ${msg.members.join(",")}`);
}

function committed(m: Core, ph: Committing): void {
  const { p, ledger } = job(m);
  const now = m.w.now;
  const step = p.step + 1;
  const samples = ph.batches.reduce((a, b) => a + (b.end - b.start), 0);
  ledger.commit(ph.batches);
  p.step = step;
  // Attempts only grow within a term (never reset at a commit): a step started ahead at attempt a
  // keeps answering at a, and (step, attempt) never names two different runs of a step.
  p.ledger = ledger.snapshot();
  p.lastLoss = ph.lossSum / Math.max(1, samples);
  const dt = m.s.lastCommitAt ? now - m.s.lastCommitAt : now - ph.stepStartedAt;
  m.s.lastCommitAt = now;
  m.s.ewmaStepMs = m.s.ewmaStepMs === 0 ? dt : 0.9 * m.s.ewmaStepMs + 0.1 * dt;
  announceRecoveries(m);
  checkHashes(m, stepVersion(m, step));
  const event: JobEvent = {
    type: "job.step",
    job: m.cfg.job,
    step,
    epoch: ledger.epoch,
    epochs: m.cfg.spec.epochs,
    loss: p.lastLoss,
    members: p.members.length,
    samples,
    samplesPerSec: m.s.ewmaStepMs > 0 ? roundSamples(m.cfg.spec) / (m.s.ewmaStepMs / 1000) : 0,
    at: now,
    t: (now - p.startedAt) / 1000,
    earlier: m.s.recentSteps,
    ...(m.cfg.spec.balance === "throughput"
      ? { shares: ph.contributors.map((node) => ({ node, n: ph.done.get(node)?.n ?? 0 })) }
      : {}),
  };
  m.s.recentSteps = [...m.s.recentSteps, stepSummary(event)].slice(-RECENT_STEPS);
  p.lastStepEvent = event;
  // Observers see a step once it is durable: a takeover can redo only steps nobody was told of.
  persist(m, event);
  requestEvalAndCheckpoint(m, step);
  writeRecordThrottled(m);
  if (ph.ahead) promoteAhead(m, ph.ahead);
  else startStep(m);
}

/** Deadlines of the step in flight (each tick): leave stragglers out, restart a silent step, abort a slow commit. */
export function stepDeadlines(m: Core): void {
  const ph = m.s.phase;
  const now = m.w.now;
  if (ph.name === "committing" && now - ph.startedAt > COMMIT_DEADLINE_MS)
    return abortAndRedo(m, "commit not applied by every reducer in time");
  if (ph.name !== "stepping") return;
  const { p } = job(m);
  const waited = now - ph.startedAt;
  const someDone = ph.done.size > 0;
  // A round of local steps computes H batches: its deadlines are H times a step's.
  const rounds = localSteps(m.cfg.spec);
  const deadline = m.cfg.spec.stepDeadlineMs * rounds;
  const patience = Math.min(deadline, Math.max(2_000 * rounds, 5 * m.s.ewmaStepMs));
  if (someDone && waited > patience) {
    const late = p.members.filter((x) => !ph.done.has(x.node));
    for (const x of late)
      record(m, {
        kind: "straggler",
        node: x.node,
        detail: `left out of step ${p.step + 1} after ${waited} ms`,
      });
    for (const x of late)
      ph.done.set(x.node, {
        type: "coord.done",
        term: m.s.term,
        step: p.step + 1,
        attempt: m.s.attempt,
        member: x.node,
        batch: null,
        n: 0,
        lossSum: 0,
        computeMs: 0,
      });
    commit(m);
  } else if (!someDone && waited > deadline) {
    m.log("warn", { step: p.step + 1 }, "no trainer answered the step; starting it again");
    m.s.attempt++;
    startStep(m);
  }
}
