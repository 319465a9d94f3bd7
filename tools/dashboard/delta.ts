/**
 * What the server pushes after the first snapshot: the parts of the state that changed. The fold
 * keeps every unchanged node and job as the same object, so a change is found by identity, with no
 * deep comparison; the page applies a delta with {@link applyDelta} (the same code, inlined in the
 * page's script, is tested here).
 * @module
 */
import type { DashJob, DashNode, DashState } from "./types.js";

/** The changes from one version of the state to a later one. */
export interface DashDelta {
  /** The version this delta applies to; a page at another version waits for the next snapshot. */
  from: number;
  version: number;
  now: number;
  epoch: number;
  monitor: string | null;
  refused: number;
  /** Nodes whose row changed or appeared. */
  nodes: DashNode[];
  /** Ids of nodes no longer in the view. */
  nodesGone: string[];
  jobs: DashJob[];
  jobsGone: string[];
}

/** The delta from `prev` to `next` (both versions of one fold). */
export function diff(prev: DashState, next: DashState): DashDelta {
  const oldNodes = new Map(prev.nodes.map((n) => [n.id, n]));
  const oldJobs = new Map(prev.jobs.map((j) => [j.id, j]));
  const nodeIds = new Set(next.nodes.map((n) => n.id));
  const jobIds = new Set(next.jobs.map((j) => j.id));
  return {
    from: prev.version,
    version: next.version,
    now: next.now,
    epoch: next.epoch,
    monitor: next.monitor,
    refused: next.refused,
    nodes: next.nodes.filter((n) => oldNodes.get(n.id) !== n),
    nodesGone: prev.nodes.filter((n) => !nodeIds.has(n.id)).map((n) => n.id),
    jobs: next.jobs.filter((j) => oldJobs.get(j.id) !== j),
    jobsGone: prev.jobs.filter((j) => !jobIds.has(j.id)).map((j) => j.id),
  };
}

/** The state after `d`, or undefined when `d` does not apply to `s`'s version. */
export function applyDelta(s: DashState, d: DashDelta): DashState | undefined {
  if (d.from !== s.version) return undefined;
  const merge = <T extends { id: string }>(
    rows: readonly T[],
    changed: readonly T[],
    gone: readonly string[],
  ) => {
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const id of gone) byId.delete(id);
    for (const r of changed) byId.set(r.id, r);
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  };
  return {
    cluster: s.cluster,
    epoch: d.epoch,
    monitor: d.monitor,
    refused: d.refused,
    version: d.version,
    now: d.now,
    nodes: merge(s.nodes, d.nodes, d.nodesGone),
    jobs: merge(s.jobs, d.jobs, d.jobsGone),
  };
}
