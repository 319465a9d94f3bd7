/**
 * The invariants a chaos run must keep, as pure functions of what the harness observed. Each one
 * returns `{ok, detail}`; a failed one says what broke in words a person can act on.
 * @module
 */
import { restoresOf, stepsLostVerdict, stepsMonotonic } from "./steps.js";

export { parseRestore, restoresOf, stepsMonotonic, type Restore } from "./steps.js";

/** The verdict on one invariant. */
export interface InvariantResult {
  ok: boolean;
  detail: string;
}

/** The parts of a job result the invariants read (see actors/coordinator/state.ts `buildResult`). */
export interface ObservedResult {
  status: string;
  epochs: number;
  steps: number;
  accuracy: number;
  samplesPerEpoch: number[];
  hashChecks?: number;
  hashMismatches?: string[];
  commitAudit?: { checked: number; mismatches: string[] };
  ledgerAudit?: {
    epochs: Array<{ epoch: number; committed: number; duplicates: number; missing: number }>;
    exact: boolean;
  };
  /** Committed steps redone after restores from a checkpoint (absent: none). */
  stepsLost?: number;
  /** The job's membership records (restores among them: failover records, see {@link parseRestore}). */
  membership?: readonly ObservedRecord[];
}

/** A membership record, from the result or from a `job.membership` event. */
export interface ObservedRecord {
  kind: string;
  detail?: string;
  /** Wall-clock ms of the record (the same in the result and in its event). */
  at: number;
}

/** One committed step as its `job.step` event told it. */
export interface ObservedStep {
  step: number;
  epoch: number;
  samples: number;
  /** Wall-clock ms of the commit. */
  at: number;
}

/** One `job.hash` event. */
export interface ObservedHash {
  version: number;
  consistent: boolean;
  hashes: Record<string, string>;
}

/** A process the harness started that exited when the harness did not make it. */
export interface UnexpectedExit {
  name: string;
  pid: number;
  code: number | null;
  signal: string | null;
  lastLines: string;
}

/** A line of a daemon's stderr that shows a crash-class error. */
export interface FatalLine {
  name: string;
  line: string;
}

/** Counters scraped from one daemon incarnation's /metrics. */
export interface NodeCounters {
  node: string;
  pid: number;
  /** Whether at least one scrape of this incarnation succeeded. */
  scraped: boolean;
  badInput: Record<string, number>;
  deadLetters: Record<string, number>;
}

/** Everything the invariants are checked against. */
export interface Observations {
  epochs: number;
  datasetSize: number;
  result?: ObservedResult;
  /** Why the job did not complete (failed, timed out), when it did not. */
  error?: string;
  steps: ObservedStep[];
  hashes: ObservedHash[];
  baselineAccuracy?: number;
  /** Why the baseline gave no accuracy, when it did not. */
  baselineError?: string;
  tolerance: number;
  unexpectedExits: UnexpectedExit[];
  fatalLines: FatalLine[];
  counters: NodeCounters[];
  plannedFaults: number;
  injectedFaults: number;
  /** Membership events as observed (restore records whose result entry a bound dropped are still here). */
  membership?: readonly ObservedRecord[];
  /** The job's checkpoint interval (steps). */
  checkpointEvery?: number;
  /** Faults injected after which nothing holds the parameters (`total`, `jetstream-outage`). */
  durabilityFaults?: number;
}

/** Names of the invariants, in report order. */
export const INVARIANTS = [
  "jobCompleted",
  "shardLedgerExact",
  "commitAudit",
  "replicasConsistent",
  "stepsMonotonic",
  "stepsLost",
  "accuracy",
  "processes",
  "counters",
  "faultsInjected",
] as const;
/** One invariant's name. */
export type InvariantName = (typeof INVARIANTS)[number];

/** Checks every invariant. */
export function checkInvariants(o: Observations): Record<InvariantName, InvariantResult> {
  return {
    jobCompleted: jobCompleted(o),
    shardLedgerExact: shardLedgerExact(o),
    commitAudit: commitAudit(o),
    replicasConsistent: replicasConsistent(o),
    stepsMonotonic: stepsMonotonic(o.steps, o.result?.steps, restoresOf(o)),
    stepsLost: stepsLostVerdict(o),
    accuracy: accuracy(o),
    processes: processes(o),
    counters: counters(o.counters),
    faultsInjected: faultsInjected(o),
  };
}

const pass = (detail: string): InvariantResult => ({ ok: true, detail });
const fail = (detail: string): InvariantResult => ({ ok: false, detail });

function jobCompleted(o: Observations): InvariantResult {
  if (!o.result) return fail(`job did not complete: ${o.error ?? "no result"}`);
  if (o.result.status !== "completed")
    return fail(`job ended with status ${o.result.status}${o.error ? `: ${o.error}` : ""}`);
  if (o.result.epochs !== o.epochs)
    return fail(`job completed ${o.result.epochs} epoch(s), ${o.epochs} were asked`);
  return pass(`completed ${o.result.epochs} epoch(s) in ${o.result.steps} steps`);
}

/** Ledger audit exact, every epoch counted the whole dataset, and the step events add up to the same. */
function shardLedgerExact(o: Observations): InvariantResult {
  const r = o.result;
  if (!r) return fail("no result to audit");
  const problems: string[] = [];
  if (!r.ledgerAudit) problems.push("the result carries no ledger audit");
  else {
    if (!r.ledgerAudit.exact) problems.push("the ledger audit is not exact");
    for (const e of r.ledgerAudit.epochs) {
      if (e.duplicates > 0 || e.missing > 0)
        problems.push(`epoch ${e.epoch}: ${e.duplicates} sample(s) counted twice, ${e.missing} never`);
    }
  }
  const wrong = r.samplesPerEpoch.map((n, i) => ({ n, i })).filter(({ n }) => n !== o.datasetSize);
  if (r.samplesPerEpoch.length !== o.epochs)
    problems.push(`samplesPerEpoch has ${r.samplesPerEpoch.length} entries for ${o.epochs} epoch(s)`);
  for (const { n, i } of wrong)
    problems.push(`epoch ${i + 1} counted ${n} samples, the dataset has ${o.datasetSize}`);
  // The last commit of each step counts: a restore redoes the steps after its checkpoint.
  const seen = new Map<number, number>();
  for (const s of o.steps) seen.set(s.step, s.samples);
  const eventTotal = [...seen.values()].reduce((a, b) => a + b, 0);
  if (seen.size === r.steps && eventTotal !== o.epochs * o.datasetSize) {
    problems.push(
      `the job.step events add up to ${eventTotal} samples, ${o.epochs} × ${o.datasetSize} expected`,
    );
  }
  if (problems.length > 0) return fail(`shard ledger: ${problems.join("; ")}`);
  return pass(
    `every sample counted exactly once in each of ${o.epochs} epoch(s) (${o.datasetSize} per epoch)`,
  );
}

function commitAudit(o: Observations): InvariantResult {
  const audit = o.result?.commitAudit;
  if (!audit) return fail("commit audit: the result carries none");
  if (audit.mismatches.length > 0) {
    const shown = audit.mismatches.slice(0, 3).join("; ");
    return fail(
      `commit audit: ${audit.mismatches.length} reducer application(s) summed other slices than the step's commit set (of ${audit.checked} checked): ${shown}${audit.mismatches.length > 3 ? "; …" : ""}`,
    );
  }
  if (audit.checked === 0) return fail("commit audit: no reducer application was checked");
  return pass(`${audit.checked} reducer applications summed exactly their step's commit set`);
}

function replicasConsistent(o: Observations): InvariantResult {
  const bad = o.hashes.filter((h) => !h.consistent);
  if (bad.length > 0)
    return fail(
      `replicas diverged at version(s) ${bad.map((h) => `${h.version} ${JSON.stringify(h.hashes)}`).join("; ")}`,
    );
  const mismatches = o.result?.hashMismatches ?? [];
  if (mismatches.length > 0)
    return fail(`the coordinator recorded hash mismatches: ${mismatches.join("; ")}`);
  const checks = Math.max(o.hashes.length, o.result?.hashChecks ?? 0);
  if (checks === 0) return fail("no parameter hash check happened");
  return pass(`replicas bit-identical at all ${checks} hash checks`);
}

function accuracy(o: Observations): InvariantResult {
  if (!o.result) return fail("no result");
  if (o.baselineAccuracy === undefined) {
    return fail(
      `no fault-free baseline to compare with${o.baselineError ? `: the baseline run did not complete (${o.baselineError})` : ""}`,
    );
  }
  const diff = o.result.accuracy - o.baselineAccuracy;
  const text = `accuracy ${o.result.accuracy.toFixed(4)} vs baseline ${o.baselineAccuracy.toFixed(4)} (Δ ${diff >= 0 ? "+" : ""}${diff.toFixed(4)}, tolerance ±${o.tolerance})`;
  return Math.abs(diff) <= o.tolerance ? pass(text) : fail(text);
}

function processes(o: Observations): InvariantResult {
  const problems = [
    ...o.unexpectedExits.map(
      (e) =>
        `${e.name} (pid ${e.pid}) exited on its own (${e.signal ? `signal ${e.signal}` : `code ${e.code}`}); last lines:\n${e.lastLines}`,
    ),
    ...o.fatalLines.map((f) => `${f.name} logged: ${f.line.slice(0, 500)}`),
  ];
  if (problems.length > 0) return fail(problems.join("\n"));
  return pass(
    "no process died unless the harness killed it; no unhandledRejection, uncaughtException or FATAL in any log",
  );
}

function counters(list: readonly NodeCounters[]): InvariantResult {
  const missing = list.filter((c) => !c.scraped);
  const fmt = (r: Record<string, number>): string => {
    const entries = Object.entries(r).filter(([, v]) => v > 0);
    return entries.length === 0 ? "0" : entries.map(([k, v]) => `${k}=${v}`).join(" ");
  };
  const lines = list.map(
    (c) => `${c.node}[${c.pid}] bad-input: ${fmt(c.badInput)}; dead letters: ${fmt(c.deadLetters)}`,
  );
  if (list.length === 0) return fail("no daemon's counters were read");
  if (missing.length > 0)
    return fail(
      `counters could not be read from ${missing.map((c) => `${c.node}[${c.pid}]`).join(", ")}; read: ${lines.join(" | ")}`,
    );
  return pass(lines.join(" | "));
}

function faultsInjected(o: Observations): InvariantResult {
  if (o.injectedFaults < o.plannedFaults) {
    return fail(
      `only ${o.injectedFaults} of ${o.plannedFaults} planned faults were injected before the job ended: raise --epochs`,
    );
  }
  return pass(`${o.injectedFaults} of ${o.plannedFaults} planned faults injected`);
}

/** Sums counters over incarnations into per-reason totals. */
export function totalCounters(list: readonly NodeCounters[]): {
  badInput: Record<string, number>;
  deadLetters: Record<string, number>;
} {
  const add = (into: Record<string, number>, from: Record<string, number>): void => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  };
  const badInput: Record<string, number> = {};
  const deadLetters: Record<string, number> = {};
  for (const c of list) {
    add(badInput, c.badInput);
    add(deadLetters, c.deadLetters);
  }
  return { badInput, deadLetters };
}
