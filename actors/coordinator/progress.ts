import type { Leased } from "./protocol.js";
import type { CoordinatorCommand } from "./protocol.js";
import { FINISH_NO_EVALUATOR_MS, FINISH_REEVAL_MS, type Core, elapsed, job } from "./model.js";
import { jobRecord } from "./records.js";
import { buildResult } from "./state.js";
import { spawnEvaluator } from "./takeover.js";
import { requestCheckpoint } from "./checkpoints.js";

type Msg<T extends CoordinatorCommand["type"]> = Extract<CoordinatorCommand, { type: T }>;

/** A loader asks for positions to prefetch: leased from the ledger to live members of this term only. */
export function onLeaseRequest(m: Core, msg: Msg<"coord.lease">): void {
  const { ledger, p } = m.s;
  const stale =
    m.s.phase.name === "campaigning" ||
    msg.term !== m.s.term ||
    !ledger ||
    !p?.members.some((x) => x.node === msg.member);
  const lease = stale ? undefined : ledger.lease(msg.member, msg.count);
  const reply: Leased = {
    type: "loader.leased",
    term: m.s.term,
    lease: lease ? { id: lease.id, epoch: lease.epoch, ranges: lease.ranges } : null,
    finished: ledger?.finished ?? false,
  };
  m.emit({ kind: "reply", msg: reply });
}

/** After committing `step`: ask for an evaluation and a checkpoint when they are due. */
export function requestEvalAndCheckpoint(m: Core, step: number): void {
  const { p } = job(m);
  if (step % m.cfg.spec.evalEvery === 0) {
    if (m.s.evaluator)
      m.emit({
        kind: "tell",
        to: m.s.evaluator,
        msg: { type: "evaluator.eval", term: m.s.term, version: step, reducers: p.reducers },
      });
    else spawnEvaluator(m); // its node died: a new one scores the next evaluation
  }
  if (step % m.cfg.spec.checkpointEvery === 0) requestCheckpoint(m, step);
}

/** The evaluator scored a version: record and announce it; the final one completes the job. */
export function onEvaluated(m: Core, msg: Msg<"coord.evaluated">): void {
  const { p, ledger } = m.s;
  // A version ahead of the job's step scored the timeline a restore abandoned (same term).
  if (msg.term !== m.s.term || !p || !ledger || msg.version > p.step) return void m.s.ignored++;
  const entry = {
    step: msg.version,
    epoch: ledger.epoch,
    t: elapsed(m),
    loss: msg.loss,
    accuracy: msg.accuracy,
  };
  if (!p.evals.some((e) => e.step === msg.version)) p.evals.push(entry);
  m.publish({ type: "job.eval", job: m.cfg.job, ...entry });
  if (m.s.phase.name === "finishing" && msg.version === p.step) {
    m.s.finalEval = { loss: msg.loss, accuracy: msg.accuracy };
    complete(m);
  }
}

/** Whether `r` names one of the job's `reducers` reducers. */
export function validReducer(r: number, reducers: number): boolean {
  return Number.isInteger(r) && r >= 0 && r < reducers;
}

/** The ledger is finished: score the final version (asked again until it answers). */
export function finish(m: Core): void {
  m.s.phase = { name: "finishing" };
  const { p } = job(m);
  if (!m.s.evaluator) {
    spawnEvaluator(m);
    m.emit({ kind: "timer", id: "finish-check", ms: FINISH_NO_EVALUATOR_MS });
    return;
  }
  m.emit({
    kind: "tell",
    to: m.s.evaluator,
    msg: { type: "evaluator.eval", term: m.s.term, version: p.step, reducers: p.reducers },
  });
  m.emit({ kind: "timer", id: "finish-check", ms: FINISH_REEVAL_MS });
}

/** The finish timer fired: still no final evaluation, ask again. */
export function onFinishCheck(m: Core): void {
  if (m.s.phase.name === "finishing") finish(m);
}

/** The job completed: build the result, announce it, then persist, tear down and resign. */
export function complete(m: Core): void {
  const { p, ledger } = job(m);
  m.s.phase = { name: "done" };
  p.state = "finished";
  p.endedAt = m.w.now;
  const result = buildResult(p, ledger, "completed", m.s.finalEval, m.w.now);
  p.result = result;
  p.ledger = ledger.snapshot();
  m.publish({ type: "job.finished", job: m.cfg.job, result });
  close(m);
}

/** Fails the job (once): announce it, then persist, tear down and resign. */
export function failJob(m: Core, error: string): void {
  if (m.s.phase.name === "done") return;
  m.log("error", { err: error }, `coordinator: ${error}`);
  m.s.phase = { name: "done" };
  const { p } = m.s;
  if (p) {
    p.state = "failed";
    p.error = error;
    p.endedAt = m.w.now;
  }
  m.publish({ type: "job.failed", job: m.cfg.job, error });
  close(m);
}

function close(m: Core): void {
  const { p } = m.s;
  const stop = p
    ? [
        ...p.members.flatMap((x) => [x.trainer, x.loader]),
        ...p.reducers.addresses,
        ...(m.s.evaluator ? [m.s.evaluator] : []),
        ...(m.s.standby?.address ? [m.s.standby.address] : []),
      ]
    : [];
  m.emit({ kind: "close", gen: m.s.generation, job: p, record: p ? jobRecord(m) : undefined, stop });
}
