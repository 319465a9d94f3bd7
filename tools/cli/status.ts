import type { Command } from "commander";
import { openJobsBucket, readJobRecords, type JobRecord } from "../../runtime/cluster/jobs.js";
import { readClusterView, type ClusterView } from "../../runtime/cluster/monitor.js";
import type { StoreProvider } from "../../runtime/store/index.js";
import {
  addNatsAuthOptions,
  clusterTargetOptions,
  intIn,
  usageErrorsExit2,
  withNats,
  type NatsAuthFlags,
} from "./options.js";
import { readStores } from "./stores-read.js";
import { table } from "./table.js";

interface StatusFlags extends NatsAuthFlags {
  nats?: string[];
  cluster: string;
  json?: boolean;
  timeoutMs: number;
}

/** One node as `flock status` reports it. */
export interface StatusNode {
  id: string;
  state: string;
  incarnation: string;
  slots: number;
  free: number;
  device: string;
  backend: string | null;
  load: number;
  lagMs: number;
  actors: Record<string, number>;
  /** Wall-clock ms of the last heartbeat the monitor saw (monitor's clock). */
  lastSeen: number;
  /** How long before the view was written that heartbeat came (same clock, so no skew). */
  lastSeenAgoMs: number;
  joinedAt: number;
}

/** What `flock status --json` prints: one JSON object. */
export interface ClusterStatus {
  cluster: string;
  /** Cluster membership epoch (0 when no view exists). */
  epoch: number;
  /** `<nodeId>:<incarnation>` of the node that wrote the view, or null. */
  monitor: string | null;
  /** Age of the view by this machine's clock, or null. */
  viewAgeMs: number | null;
  nodes: StatusNode[];
  jobs: JobRecord[];
  /** Parts that could not be read (e.g. the jobs bucket while JetStream elects a leader); absent when none. */
  warnings?: string[];
}

/** Reads the cluster's status from its stores: the membership view and the jobs bucket. */
export async function readClusterStatus(stores: StoreProvider, cluster: string): Promise<ClusterStatus> {
  const warnings: string[] = [];
  // The view is what status is for: its failure fails the call. Jobs are listed through a consumer,
  // which is slower to get while JetStream recovers from a server loss: report, do not fail.
  const [view, jobs] = await Promise.all([
    readClusterView(stores),
    openJobsBucket(stores)
      .then(readJobRecords)
      .catch((err: Error) => {
        warnings.push(`jobs could not be read: ${err.message}`);
        return { jobs: [], bad: [] };
      }),
  ]);
  if (jobs.bad.length > 0) warnings.push(`malformed job records skipped: ${jobs.bad.join(", ")}`);
  const status: ClusterStatus = {
    cluster,
    epoch: view?.epoch ?? 0,
    monitor: view?.monitor ?? null,
    viewAgeMs: view ? Math.max(0, Date.now() - view.updatedAt) : null,
    nodes: view ? view.nodes.map((n) => toStatusNode(n, view)) : [],
    jobs: jobs.jobs,
  };
  if (warnings.length > 0) status.warnings = warnings;
  return status;
}

function toStatusNode(n: ClusterView["nodes"][number], view: ClusterView): StatusNode {
  return {
    id: n.node,
    state: n.state,
    incarnation: n.inc,
    slots: n.slots,
    free: n.freeSlots,
    device: n.device,
    backend: n.backend ?? null,
    load: n.load,
    lagMs: n.lagMs,
    actors: n.actors,
    lastSeen: n.lastSeen,
    lastSeenAgoMs: Math.max(0, view.updatedAt - n.lastSeen),
    joinedAt: n.joinedAt,
  };
}

/** Registers `flock status`. */
export function registerStatusCommand(program: Command): void {
  const cmd = clusterTargetOptions(program.command("status").description("Show the cluster's nodes and jobs"))
    .option("--json", "Print one JSON object")
    .option("--timeout-ms <ms>", "Give up after this long", intIn(100, 600_000), 5000);
  addNatsAuthOptions(cmd);
  usageErrorsExit2(cmd);
  cmd.action(async (flags: StatusFlags) => {
    const status = await fetchStatus(withNats(cmd, flags));
    process.stdout.write(flags.json ? `${JSON.stringify(status)}\n` : formatStatus(status));
  });
}

async function fetchStatus(flags: StatusFlags & { nats: string[] }): Promise<ClusterStatus> {
  return readStores(flags, "flock-status", (stores) => readClusterStatus(stores, flags.cluster));
}

/** The human-readable report. */
export function formatStatus(s: ClusterStatus): string {
  const lines: string[] = [];
  if (s.monitor === null) {
    lines.push(
      `cluster ${s.cluster}: no membership view (no daemon of this cluster is running, or none has written it yet)`,
    );
  } else {
    const age = s.viewAgeMs ?? 0;
    lines.push(
      `cluster ${s.cluster}  epoch ${s.epoch}  monitor ${s.monitor}  view ${seconds(age)} old${age > 5000 ? "  (STALE: is any daemon running?)" : ""}`,
    );
  }
  lines.push("");
  lines.push(
    ...table(
      ["NODE", "STATE", "INCARNATION", "SLOTS", "FREE", "DEVICE/BACKEND", "LAG", "LAST SEEN"],
      s.nodes.map((n) => [
        n.id,
        n.state,
        n.incarnation,
        String(n.slots),
        String(n.free),
        `${n.device}/${n.backend ?? "-"}`,
        `${Math.round(n.lagMs)}ms`,
        `${seconds(n.lastSeenAgoMs)} ago`,
      ]),
      "(no nodes)",
    ),
  );
  lines.push("");
  lines.push(
    ...table(
      ["JOB", "STATE", "STEP", "EPOCH", "MEMBERS"],
      s.jobs.map((j) => [j.id, j.state, String(j.step), String(j.epoch), j.members.join(",") || "-"]),
      "(no jobs)",
    ),
  );
  for (const j of s.jobs)
    for (const u of j.unplaced ?? []) lines.push(`job ${j.id}: no trainer on ${u.node}: ${u.reason}`);
  for (const w of s.warnings ?? []) lines.push(`warning: ${w}`);
  return `${lines.join("\n")}\n`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
