/**
 * Which orphaned jobs a node adopts, as a pure machine: one scan of the job-state bucket and the
 * coordinators' lease bucket in (with the membership view and the clock), adoptions out. No timers
 * and no I/O; the watcher actor (`orphan-watcher.ts`) does the reading and the spawning.
 *
 * A job is orphaned when its state record says `running`, nobody live holds its coordinator lease
 * (the key is free, or its holder's incarnation is dead, left or superseded) and no coordinator
 * candidate of it runs on this node. That happens when the coordinator's node and its standby's
 * node die together, or when every daemon restarts (new incarnations: their actors are gone).
 *
 * Adoption rule (deterministic, bounded):
 * - **Who.** The alive nodes ranked by rendezvous hashing of (job, node): the first
 *   {@link OrphanPolicy.adopters} (2: a candidate and a standby) adopt. Every node computes the
 *   same ranking from the same view, so no herd campaigns and no coordination is needed. If the job
 *   is still orphaned `escalateEveryMs` later (a chosen node is alive but cannot adopt), one more
 *   node of the ranking joins, and so on.
 * - **When.** Only after the job looked orphaned for {@link OrphanPolicy.graceMs} in a row (a live
 *   standby that is about to take over a free lease is not raced), and not before
 *   {@link OrphanPolicy.startGraceMs} after the watcher started (this node's membership view must
 *   first learn the cluster, or every node would rank itself first among the few it knows).
 * - **Never** a job whose record is `finished` or `failed`.
 * @module
 */

/** A node as the membership view sees it (the parts the rule reads). */
export interface ViewedNode {
  node: string;
  inc: string;
  state: "alive" | "suspect" | "dead" | "left";
}

/** One job of a scan: its state record's state and its coordinator lease's holder (undefined: free). */
export interface ScannedJob {
  job: string;
  /**
   * The record's state; undefined when it was not read, because a live holder has the lease
   * ({@link needsRecord}): the job is not an orphan whatever its state.
   */
  state: "running" | "finished" | "failed" | undefined;
  /** `nodeId:incarnation` of the lease holder, or undefined when the lease key is free. */
  holder: string | undefined;
}

/** One scan, as the watcher read it. */
export interface Scan {
  /** This node's id. */
  nodeId: string;
  /** Jobs read in this pass (at most {@link OrphanPolicy.maxJobsPerPass} are looked at). */
  jobs: readonly ScannedJob[];
  /** Whether `jobs` covers every key of the bucket (then jobs not in it are forgotten). */
  complete: boolean;
  /** The membership view's nodes (every state). */
  nodes: readonly ViewedNode[];
  /** Jobs that have a coordinator candidate on this node. */
  local: ReadonlySet<string>;
  now: number;
}

/** Tunables of the rule; see the module comment. */
export interface OrphanPolicy {
  /** Nodes that adopt an orphan at first (default 2: a candidate and a standby). */
  adopters: number;
  /** How long a job must look orphaned in a row before it is adopted (ms). */
  graceMs: number;
  /** No adoption this soon after the watcher started (ms). */
  startGraceMs: number;
  /** One more node of the ranking adopts per this much longer orphaned (ms). */
  escalateEveryMs: number;
  /** Jobs looked at per pass: the bound on what one pass reads. */
  maxJobsPerPass: number;
}

/**
 * Defaults. The grace (5 s) exceeds the coordinators' lease TTL (3 s) plus a standby's retry
 * (0.75 s): a live standby takes a freed lease well before an adopter is spawned.
 */
export const DEFAULT_ORPHAN_POLICY: OrphanPolicy = {
  adopters: 2,
  graceMs: 5_000,
  startGraceMs: 5_000,
  escalateEveryMs: 15_000,
  maxJobsPerPass: 256,
};

/** What the machine remembers between scans. */
export interface OrphanWatch {
  readonly startedAt: number;
  /** When each job was first seen orphaned in the current run of orphaned scans. */
  readonly orphanSince: ReadonlyMap<string, number>;
}

/** The outcome of one scan. */
export interface ScanOutcome {
  watch: OrphanWatch;
  /** Jobs this node should adopt now (spawn a coordinator candidate for). */
  adopt: string[];
  /** Jobs seen orphaned in this scan (adopted here or not). */
  orphaned: number;
}

/** A fresh watch, started at `now`. */
export function startWatch(now: number): OrphanWatch {
  return { startedAt: now, orphanSince: new Map() };
}

/** Decides which orphans this node adopts after one scan. */
export function decideAdoptions(
  watch: OrphanWatch,
  scan: Scan,
  policy: OrphanPolicy = DEFAULT_ORPHAN_POLICY,
): ScanOutcome {
  const since = new Map(scan.complete ? [] : watch.orphanSince);
  const adopt: string[] = [];
  const alive = aliveNodes(scan);
  let orphaned = 0;
  for (const job of scan.jobs.slice(0, Math.max(0, policy.maxJobsPerPass))) {
    since.delete(job.job);
    if (!isOrphan(job, scan)) continue;
    orphaned++;
    const first = watch.orphanSince.get(job.job) ?? scan.now;
    since.set(job.job, first);
    if (scan.now - watch.startedAt < policy.startGraceMs || scan.now - first < policy.graceMs) continue;
    const extra = Math.floor((scan.now - first - policy.graceMs) / Math.max(1, policy.escalateEveryMs));
    if (adopters(job.job, alive, policy.adopters + extra).includes(scan.nodeId)) adopt.push(job.job);
  }
  // Bound the memory: a partial scan keeps entries of jobs outside its window, but not forever.
  const bound = 4 * Math.max(1, policy.maxJobsPerPass);
  for (const key of since.keys()) if (since.size > bound) since.delete(key);
  return { watch: { startedAt: watch.startedAt, orphanSince: since }, adopt, orphaned };
}

/** Running, with no live lease holder and no candidate here. */
function isOrphan(job: ScannedJob, scan: Scan): boolean {
  if (job.state !== "running" || scan.local.has(job.job)) return false;
  return job.holder === undefined || holderGone(scan.nodes, job.holder);
}

/** Whether a job's state record matters to the rule: only when nobody live holds its lease. */
export function needsRecord(nodes: readonly ViewedNode[], holder: string | undefined): boolean {
  return holder === undefined || holderGone(nodes, holder);
}

/**
 * A lease holder is `nodeId:incarnation`; it is gone when that incarnation is dead, left or
 * superseded. A node the view does not know is not judged: its lease expires by the bucket's TTL
 * if it is really gone (the same rule as the coordinators' own lease candidates).
 */
export function holderGone(nodes: readonly ViewedNode[], holder: string): boolean {
  const i = holder.lastIndexOf(":"); // node ids may hold `:`, incarnations never do
  const info = nodes.find((n) => n.node === holder.slice(0, i));
  if (!info) return false;
  return info.inc !== holder.slice(i + 1) || info.state === "dead" || info.state === "left";
}

/** Alive node ids, this node included (it is running this scan even before it sees its own heartbeat). */
function aliveNodes(scan: Scan): string[] {
  const ids = new Set(scan.nodes.filter((n) => n.state === "alive").map((n) => n.node));
  ids.add(scan.nodeId);
  return [...ids];
}

/** The first `k` nodes of the rendezvous ranking of `job` (highest score first, ties by id). */
export function adopters(job: string, nodes: readonly string[], k: number): string[] {
  return nodes
    .map((node) => ({ node, score: rendezvousScore(job, node) }))
    .sort((a, b) => b.score - a.score || a.node.localeCompare(b.node))
    .slice(0, Math.max(0, k))
    .map((x) => x.node);
}

/** FNV-1a over `job \0 node`, finished with a murmur3 mix so that nearby ids spread. */
function rendezvousScore(job: string, node: string): number {
  let h = 0x811c9dc5;
  const text = `${job}\u0000${node}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
