/**
 * The jobs part of the dashboard's pure fold: job records and live job events in, job rows with
 * bounded curves out. A job's state comes from its record (written by its coordinator's node), never
 * from an event alone: any member may publish on a job's events topic, so an event can fill in
 * curves and a result but cannot end a job on the page.
 * @module
 */
import type { JobEvent } from "../../messages/index.js";
import type { JobRecord } from "../../runtime/cluster/jobs.js";
import type { DashJob, DashLimits, EvalPoint, LossPoint, Mark, ResultSummary } from "./types.js";

/** Record states of a job that ended. */
export function isEnded(state: string): boolean {
  return state === "finished" || state === "failed";
}

function emptyJob(id: string, at: number): DashJob {
  return {
    id,
    state: "running",
    step: 0,
    epoch: 0,
    epochs: null,
    members: [],
    memberCount: 0,
    samplesPerSec: null,
    updatedAt: at,
    loss: [],
    lossStride: 1,
    evals: [],
    marks: [],
    recoverySeconds: [],
    result: null,
    error: null,
    report: null,
    recorded: false,
    endedAt: null,
  };
}

const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);

/**
 * Merges the older half of `points` pairwise (mean loss, the later step) once there are more than
 * `max`, so a long run keeps its whole history at a coarser grain and its recent steps exactly.
 */
export function compactPoints(points: readonly LossPoint[], max: number): LossPoint[] {
  if (points.length <= max) return [...points];
  const half = Math.floor(points.length / 2) & ~1;
  const merged: LossPoint[] = [];
  for (let i = 0; i < half; i += 2) {
    const a = points[i]!;
    const b = points[i + 1]!;
    const ls = [a.loss, b.loss].filter((v): v is number => v !== null);
    merged.push({ step: b.step, loss: ls.length === 0 ? null : ls.reduce((x, y) => x + y, 0) / ls.length });
  }
  return [...merged, ...points.slice(half)];
}

/** Updates the job `id` (created when absent and there is room); unchanged jobs are kept as they are. */
function update(
  jobs: readonly DashJob[],
  id: string,
  at: number,
  limits: DashLimits,
  f: (j: DashJob) => DashJob,
): DashJob[] {
  const i = jobs.findIndex((j) => j.id === id);
  if (i >= 0) return jobs.map((j, k) => (k === i ? f(j) : j));
  return bound([...jobs, f(emptyJob(id, at))], limits);
}

/** Folds a listing of the jobs bucket. */
export function applyRecords(
  jobs: readonly DashJob[],
  records: readonly JobRecord[],
  at: number,
  limits: DashLimits,
): DashJob[] {
  let out = [...jobs];
  for (const r of records) {
    const cur = out.find((j) => j.id === r.id);
    if (cur && cur.state === r.state && cur.step >= r.step && cur.members.join() === r.members.join())
      continue;
    out = update(out, r.id, at, limits, (j) => ({
      ...j,
      state: r.state,
      step: Math.max(j.step, r.step),
      epoch: r.epoch,
      members: r.members.slice(0, limits.maxNodes),
      recorded: true,
      updatedAt: at,
      endedAt: isEnded(r.state) ? (j.endedAt ?? at) : null,
    }));
  }
  return bound(out, limits);
}

/** Folds one live event of a job's topic. */
export function applyJobEvent(
  jobs: readonly DashJob[],
  e: JobEvent,
  at: number,
  limits: DashLimits,
): DashJob[] {
  switch (e.type) {
    case "job.step":
      return update(jobs, e.job, at, limits, (j) => onStep(j, e, at, limits));
    case "job.eval":
      return update(jobs, e.job, at, limits, (j) => onEval(j, e, at, limits));
    case "job.membership":
      if (e.event.kind === "straggler") return [...jobs];
      return update(jobs, e.job, at, limits, (j) => onMembership(j, e, at, limits));
    case "job.finished":
      return update(jobs, e.job, at, limits, (j) => ({ ...j, result: summary(e.result), updatedAt: at }));
    case "job.failed":
      return update(jobs, e.job, at, limits, (j) => ({ ...j, error: e.error.slice(0, 500), updatedAt: at }));
    case "job.hash":
      return [...jobs];
  }
}

function onStep(
  j: DashJob,
  e: Extract<JobEvent, { type: "job.step" }>,
  at: number,
  limits: DashLimits,
): DashJob {
  const last = j.loss.at(-1)?.step ?? -1;
  // Steps not drawn yet, oldest first: earlier ones whose own events were lost, then this one (a
  // replay of a step already drawn adds nothing).
  const fresh = [...(e.earlier ?? []), e]
    .filter((s) => s.step > last)
    .sort((a, b) => a.step - b.step)
    .filter((s, i, all) => i === 0 || s.step !== all[i - 1]?.step);
  const points = [...j.loss, ...fresh.map((s) => ({ step: s.step, loss: finite(s.loss) }))];
  const loss = compactPoints(points, limits.maxPoints);
  return {
    ...j,
    step: Math.max(j.step, e.step),
    epoch: e.epoch,
    epochs: e.epochs,
    memberCount: e.members,
    samplesPerSec: finite(e.samplesPerSec),
    loss,
    lossStride: loss.length < points.length ? j.lossStride * 2 : j.lossStride,
    updatedAt: at,
  };
}

function onEval(
  j: DashJob,
  e: Extract<JobEvent, { type: "job.eval" }>,
  at: number,
  limits: DashLimits,
): DashJob {
  if (j.evals.some((x) => x.step === e.step)) return j;
  const point: EvalPoint = { step: e.step, loss: finite(e.loss), accuracy: finite(e.accuracy) };
  const evals = [...j.evals, point].sort((a, b) => a.step - b.step).slice(-limits.maxPoints);
  return { ...j, evals, updatedAt: at };
}

function onMembership(
  j: DashJob,
  e: Extract<JobEvent, { type: "job.membership" }>,
  at: number,
  limits: DashLimits,
): DashJob {
  const kind = e.event.kind;
  if (kind === "straggler") return j;
  const mark: Mark = { step: e.step, kind, node: e.event.node.slice(0, 128), source: "job" };
  if (e.event.detail !== undefined) mark.detail = e.event.detail.slice(0, 200);
  const rec = e.event.recoverySeconds;
  if (rec !== undefined && Number.isFinite(rec)) mark.recoverySeconds = rec;
  // The coordinator's word on a death replaces what the dashboard guessed from the heartbeats.
  const marks = j.marks.filter((m) => !(kind === "death" && m.source === "cluster" && m.node === mark.node));
  const recoverySeconds =
    mark.recoverySeconds === undefined ? j.recoverySeconds : [...j.recoverySeconds, rec!];
  return {
    ...j,
    marks: [...marks, mark].slice(-limits.maxMarks),
    recoverySeconds: recoverySeconds.slice(-limits.maxMarks),
    updatedAt: at,
  };
}

/** Marks the death of `nodes`, seen by the dashboard, on the running jobs they are members of. */
export function markDeaths(
  jobs: readonly DashJob[],
  nodes: readonly string[],
  at: number,
  limits: DashLimits,
): DashJob[] {
  if (nodes.length === 0) return [...jobs];
  return jobs.map((j) => {
    const hit = nodes.filter((n) => j.members.includes(n) && j.endedAt === null);
    if (hit.length === 0) return j;
    const marks: Mark[] = hit.map((node) => ({ step: j.step, kind: "death", node, source: "cluster" }));
    return { ...j, marks: [...j.marks, ...marks].slice(-limits.maxMarks), updatedAt: at };
  });
}

/**
 * Sets an ended job's result from its durable record, for a job the view holds that has none (a
 * result heard live is never replaced).
 */
export function setStoredResult(
  jobs: readonly DashJob[],
  job: string,
  result: Extract<JobEvent, { type: "job.finished" }>["result"],
): DashJob[] {
  return jobs.map((j) =>
    j.id === job && j.result === null && j.endedAt !== null ? { ...j, result: summary(result) } : j,
  );
}

/** Sets a job's report path (only for a job the view holds). */
export function setReport(jobs: readonly DashJob[], job: string, path: string): DashJob[] {
  return jobs.map((j) => (j.id === job && j.report !== path ? { ...j, report: path } : j));
}

function summary(r: Extract<JobEvent, { type: "job.finished" }>["result"]): ResultSummary {
  return {
    status: r.status.slice(0, 64),
    steps: r.steps,
    epochs: r.epochs,
    accuracy: finite(r.accuracy),
    loss: finite(r.loss),
    wallSeconds: r.wallSeconds,
    replicasConsistent: r.replicasConsistent,
    backend: r.backend.slice(0, 64),
  };
}

/**
 * Keeps at most `maxFinishedJobs` ended jobs and `maxJobs` in all: the ended ones that ended first
 * go first, then running jobs without a record, then those updated least recently.
 */
export function bound(jobs: readonly DashJob[], limits: DashLimits): DashJob[] {
  const ended = jobs.filter((j) => j.endedAt !== null).sort((a, b) => (b.endedAt ?? 0) - (a.endedAt ?? 0));
  const drop = new Set(ended.slice(limits.maxFinishedJobs).map((j) => j.id));
  let kept = jobs.filter((j) => !drop.has(j.id));
  if (kept.length > limits.maxJobs) {
    // Ended jobs first, then jobs known only from events, then the least recently updated.
    const order = [...kept].sort(
      (a, b) =>
        Number(a.endedAt === null) - Number(b.endedAt === null) ||
        Number(a.recorded) - Number(b.recorded) ||
        a.updatedAt - b.updatedAt,
    );
    const gone = new Set(order.slice(0, kept.length - limits.maxJobs).map((j) => j.id));
    kept = kept.filter((j) => !gone.has(j.id));
  }
  return kept.sort((a, b) => a.id.localeCompare(b.id));
}
