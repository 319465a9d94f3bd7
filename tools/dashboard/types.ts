/**
 * The dashboard's data: what the cluster view folds (events in) and what the page draws (the
 * state out, sent to browsers as JSON over server-sent events). Plain data only, so a snapshot is
 * `JSON.stringify` of the state.
 * @module
 */
import type { JobEvent } from "../../messages/index.js";
import type { Heartbeat } from "../../runtime/cluster/heartbeat.js";
import type { JobRecord } from "../../runtime/cluster/jobs.js";
import type { ClusterView } from "../../runtime/cluster/monitor.js";

/** A node's state as the dashboard shows it (`draining`: the node announced it is leaving). */
export type DashNodeState = "alive" | "suspect" | "dead" | "draining" | "left";

/** One node: its latest heartbeat, and the state the dashboard derives from the heartbeats' timing. */
export interface DashNode {
  id: string;
  inc: string;
  state: DashNodeState;
  slots: number;
  freeSlots: number;
  device: string;
  backend: string | null;
  load: number;
  /** Event-loop lag (p99) the node reports. */
  lagMs: number;
  /** Time since the dashboard last heard a heartbeat of this node (its clock, so no skew). */
  heartbeatAgeMs: number;
  badInput: number | null;
  deadLetters: number | null;
  rssBytes: number | null;
  /** Dashboard-clock ms of the last heartbeat. */
  lastHeardAt: number;
  /** Dashboard-clock ms this incarnation was first heard. */
  firstHeardAt: number;
}

/** One point of the training-loss curve (a bucket's mean once downsampled). */
export interface LossPoint {
  step: number;
  loss: number | null;
}

/** One evaluation. */
export interface EvalPoint {
  step: number;
  loss: number | null;
  accuracy: number | null;
}

/** A membership change drawn on a job's curves. */
export interface Mark {
  step: number;
  kind: "join" | "death" | "leave" | "suspect" | "recovered" | "resize" | "failover";
  node: string;
  detail?: string;
  recoverySeconds?: number;
  /** `job`: the coordinator announced it; `cluster`: the dashboard saw a member's heartbeats stop. */
  source: "job" | "cluster";
}

/** What a finished job's `job.finished` event said. */
export interface ResultSummary {
  status: string;
  steps: number;
  epochs: number;
  accuracy: number | null;
  loss: number | null;
  wallSeconds: number;
  replicasConsistent: boolean;
  backend: string;
}

/** One job: its record, its live progress and curves. */
export interface DashJob {
  id: string;
  /** The record's state (`running`, a coordinator phase, `finished`, `failed`). */
  state: string;
  step: number;
  epoch: number;
  epochs: number | null;
  /** Node ids of the members, from the job's record. */
  members: string[];
  /** Members in the latest committed step. */
  memberCount: number;
  samplesPerSec: number | null;
  /** Dashboard-clock ms of the latest change. */
  updatedAt: number;
  loss: LossPoint[];
  /** How many committed steps each of the oldest loss points stands for at most (1: none merged). */
  lossStride: number;
  evals: EvalPoint[];
  marks: Mark[];
  /** Seconds from each failure to the next step committed without the failed member. */
  recoverySeconds: number[];
  result: ResultSummary | null;
  error: string | null;
  /** Path of the job's HTML report under the dashboard's report folder, when one exists. */
  report: string | null;
  /**
   * Whether the jobs bucket holds a record of the job. Any member may publish events under any job
   * id, so a job known only from events is the first to go when the view is full.
   */
  recorded: boolean;
  /** Dashboard-clock ms the job was seen ending, or null while it runs. */
  endedAt: number | null;
}

/** The whole view. */
export interface DashState {
  cluster: string;
  /** Membership epoch of the cluster view (0 before one was read). */
  epoch: number;
  monitor: string | null;
  nodes: DashNode[];
  jobs: DashJob[];
  /** Inputs refused (malformed job event, event for another job than its subject names, …). */
  refused: number;
  /** Increases with every change: a browser applies a snapshot only when newer. */
  version: number;
  /** Dashboard-clock ms of the latest event. */
  now: number;
}

/** Bounds of the view, so a long run or a hostile publisher cannot grow it without end. */
export interface DashLimits {
  maxNodes: number;
  /** Running and finished jobs together; the oldest finished go first. */
  maxJobs: number;
  maxFinishedJobs: number;
  /** Points per curve; past it, the older half is merged pairwise. */
  maxPoints: number;
  maxMarks: number;
  /** Heartbeat silence after which a node is suspect, then dead (the daemons' defaults). */
  suspectAfterMs: number;
  deadAfterMs: number;
  /** A dead or left node is dropped from the view this long after its last heartbeat. */
  forgetAfterMs: number;
}

/** Defaults of {@link DashLimits}. */
export const DEFAULT_LIMITS: DashLimits = {
  maxNodes: 256,
  maxJobs: 64,
  maxFinishedJobs: 16,
  maxPoints: 400,
  maxMarks: 100,
  suspectAfterMs: 1250,
  deadAfterMs: 2000,
  forgetAfterMs: 10 * 60_000,
};

/** What the cluster view folds. `at` is the dashboard's clock. */
export type DashEvent =
  | { type: "heartbeat"; hb: Heartbeat; at: number }
  | { type: "tick"; at: number }
  | { type: "view"; view: ClusterView; at: number }
  | { type: "jobs"; records: JobRecord[]; at: number }
  | { type: "job-event"; event: JobEvent; at: number }
  | { type: "report"; job: string; path: string; at: number }
  /** An ended job's result from its durable record (the job ended before the page heard it live). */
  | {
      type: "stored-result";
      job: string;
      result: Extract<JobEvent, { type: "job.finished" }>["result"];
      at: number;
    }
  | { type: "refused"; at: number };
