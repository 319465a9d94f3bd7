/**
 * Which nodes hold the job's `file://` data, as the coordinator learns it: each live node is asked
 * once per incarnation (`checkData`, answered by the node's `data-check` actor); a node that
 * lacks a file, or holds one whose sha256 differs from the submitter's (`spec.dataHashes`, the
 * reference: the bytes the job was checked against at submit), is not given a trainer and is
 * asked again every {@link DATA_RECHECK_MS} (the user may copy the file there). Its reason is in
 * the job record (`flock status`). A node whose check passed is not asked again while it runs
 * the same incarnation: its trainer read the data when it was prepared. Pure: no I/O, no timers.
 * @module
 */
import { fileSources, type DataSource } from "../compute/data-presence.js";
import type { JobSpec } from "../job/spec.js";
import type { Core } from "./model.js";

/** How long the coordinator waits for a node's answer (it may hash a file of up to 32 MiB). */
export const DATA_CHECK_MS = 30_000;
/** A node that lacks the data is asked again after this. */
export const DATA_RECHECK_MS = 5_000;
/** Nodes named in the job record as not given a trainer (the record's size stays bounded). */
export const MAX_UNPLACED = 16;

/** The latest data check of one node incarnation. */
export interface DataCheck {
  inc: string;
  /** The generation it was asked under: an answer to an earlier one (before a lost lease) is dropped. */
  gen: number;
  state: "pending" | "ok" | "refused";
  /** When it was asked (pending) or answered. */
  at: number;
  /** Why it was refused (kept while a re-check is pending, so status goes on saying why). */
  problems: string[];
}

/** A node the coordinator does not give a trainer, and why. */
export interface Unplaced {
  node: string;
  reason: string;
}

/** The `file://` sources a node must hold to train this job (none for built-in or stored data). */
export function jobSources(spec: JobSpec): DataSource[] {
  return fileSources(spec.dataset, spec.dataHashes);
}

/** Whether node incarnation `inc` should be asked (again) at `now`, under generation `gen`. */
export function checkDue(check: DataCheck | undefined, inc: string, now: number, gen: number): boolean {
  if (!check || check.inc !== inc) return true;
  // A pending ask of an earlier generation is never answered (its outcome is dropped), nor one lost.
  if (check.state === "pending") return check.gen !== gen || now - check.at > DATA_CHECK_MS * 2;
  return check.state === "refused" && now - check.at >= DATA_RECHECK_MS;
}

/** Whether `node` may get a trainer as far as the data goes: the job reads no file, or its live incarnation passed. */
export function dataReady(m: Core, node: string): boolean {
  if (jobSources(m.cfg.spec).length === 0) return true;
  const check = m.s.dataChecks.get(node);
  const inc = m.w.alive.find((n) => n.node === node)?.inc;
  return check?.state === "ok" && check.inc === inc;
}

/** Each tick while acting: forgets nodes no longer alive, asks the live nodes that are due. */
export function requestDataChecks(m: Core): void {
  const sources = jobSources(m.cfg.spec);
  if (sources.length === 0) return;
  const checks = m.s.dataChecks;
  for (const node of checks.keys()) if (!m.w.alive.some((n) => n.node === node)) checks.delete(node);
  for (const { node, inc } of m.w.alive) {
    const check = checks.get(node);
    if (!checkDue(check, inc, m.w.now, m.s.generation)) continue;
    const problems = check?.inc === inc ? check.problems : [];
    checks.set(node, { inc, gen: m.s.generation, state: "pending", at: m.w.now, problems });
    m.emit({ kind: "checkData", gen: m.s.generation, node, inc, sources });
  }
}

/**
 * A node answered (or did not, within {@link DATA_CHECK_MS}: `problems` says so). Only the
 * pending check of that node's incarnation takes it; anything else is stale and counted.
 */
export function onDataChecked(m: Core, node: string, inc: string, problems: readonly string[]): void {
  const check = m.s.dataChecks.get(node);
  if (!check || check.inc !== inc || check.state !== "pending") return void m.s.ignored++;
  const state = problems.length === 0 ? "ok" : "refused";
  // Logged when the reason appears or changes, not at every re-check that finds the same.
  const news = problems.join("\n") !== check.problems.join("\n");
  m.s.dataChecks.set(node, { inc, gen: check.gen, state, at: m.w.now, problems: [...problems] });
  if (state === "refused" && news)
    m.log("warn", { node, problems }, `coordinator: ${node} lacks the job's data; no trainer there`);
}

/** The live nodes refused for the data, with why (at most {@link MAX_UNPLACED}, sorted by node). */
export function unplacedNodes(m: Core): Unplaced[] {
  return [...m.s.dataChecks.entries()]
    .filter(([, c]) => c.problems.length > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .slice(0, MAX_UNPLACED)
    .map(([node, c]) => ({ node, reason: c.problems.join("; ") }));
}
