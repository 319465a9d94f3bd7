/**
 * Injecting and healing each kind of fault on a {@link ChaosCluster}.
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ChaosCluster } from "./cluster.js";
import { IDENTITY_TTL_MS, type FaultKind, type PlannedFault } from "./schedule.js";

/** A fault as it happened. */
export interface FaultRecord {
  index: number;
  kind: FaultKind;
  /** Node id, or nats-server name for a broker fault. */
  target: string;
  /** Wall-clock ms when the fault took effect, and when it was healed. */
  injectedAt: number;
  healedAt?: number;
  holdMs: number;
  /** Committed steps when it was injected. */
  atStep: number;
  /** Injection → the commit of the first step started after it, in seconds (see JobObserver.recoveryAfter). */
  recoverySeconds?: number;
  /** A kill's injection → the coordinator's record of the loss, in seconds (see recoveryFromKill). */
  detectionSeconds?: number;
  /** Whether the job was back to full membership before the next fault (or the end). */
  rejoined?: boolean;
  detail: string;
}

/** What the injector needs to know about the job now. */
export interface JobView {
  /** Node holding the coordinator's lease now (undefined when unknown). */
  coordinatorNode(): Promise<string | undefined>;
  /** Committed steps so far. */
  step(): number;
  /** Step of the job's newest complete checkpoint per its durable state (null: none yet; undefined: unreadable). */
  checkpointStep(): Promise<number | null | undefined>;
}

/** How long a durability fault waits for the job's first complete checkpoint before it fires anyway. */
const CHECKPOINT_WAIT_MS = 60_000;

/**
 * Injects `fault`, holds it for `holdMs`, heals it, and resolves with its record. Node faults
 * (kill, pause, partition, slow) spare the node holding the coordinator's lease, so that the
 * coordinator is lost exactly when a `coordinator` or `coordinator-pause` fault says so. A paused
 * holder is deposed while it sleeps; when it runs again its timers, lease renewal and any state
 * write it had in flight go out late, and must not corrupt what its successor did. The durability
 * faults (`total`, `jetstream-outage`) hit every daemon or every server, once the job has a
 * complete checkpoint to come back from.
 */
export async function injectFault(
  cluster: ChaosCluster,
  job: JobView,
  fault: PlannedFault,
  onInjected: (r: FaultRecord) => void,
): Promise<FaultRecord> {
  const record = (target: string, detail: string): FaultRecord => {
    const r: FaultRecord = {
      index: fault.index,
      kind: fault.kind,
      target,
      injectedAt: Date.now(),
      holdMs: fault.holdMs,
      atStep: job.step(),
      detail,
    };
    onInjected(r);
    return r;
  };
  switch (fault.kind) {
    case "kill":
    case "coordinator": {
      const node = await pickNode(cluster, job, fault);
      const d = cluster.daemon(node)!;
      await d.scrape();
      const r = record(
        node,
        `SIGKILL pid ${d.pid}${fault.kind === "coordinator" ? " (holder of the coordinator lease)" : ""}; restarted after ${fault.holdMs} ms`,
      );
      await d.kill();
      await sleep(fault.holdMs);
      await d.start();
      r.healedAt = Date.now();
      r.detail += ` as pid ${d.pid} (incarnation ${d.incarnation})`;
      return r;
    }
    case "pause":
    case "coordinator-pause": {
      const node = await pickNode(cluster, job, fault);
      const d = cluster.daemon(node)!;
      await d.scrape();
      const r = record(
        node,
        `SIGSTOP pid ${d.pid}${fault.kind === "coordinator-pause" ? " (holder of the coordinator lease)" : ""} for ${fault.holdMs} ms, then SIGCONT`,
      );
      d.pause();
      await sleep(fault.holdMs);
      d.resume();
      r.healedAt = Date.now();
      return r;
    }
    case "partition": {
      const node = await pickNode(cluster, job, fault);
      const proxy = cluster.proxyOf(node);
      const r = record(node, `link to NATS cut for ${fault.holdMs} ms`);
      proxy.cut();
      await sleep(fault.holdMs);
      proxy.heal();
      r.healedAt = Date.now();
      return r;
    }
    case "slow": {
      const node = await pickNode(cluster, job, fault);
      const proxy = cluster.proxyOf(node);
      const r = record(node, `link slowed by ${fault.latencyMs} ms each way for ${fault.holdMs} ms`);
      proxy.setLatency(fault.latencyMs!);
      await sleep(fault.holdMs);
      proxy.setLatency(0);
      r.healedAt = Date.now();
      return r;
    }
    case "broker": {
      // Server 0 carries the observer; the others are fair game.
      const candidates = cluster.nats.servers.slice(1).filter((s) => s.running);
      if (candidates.length === 0) throw new Error("no nats-server to kill");
      const server = candidates[Math.floor(fault.targetDraw * candidates.length)]!;
      const r = record(
        server.serverName,
        `nats-server ${server.serverName} (pid ${server.pid}) SIGKILLed, restarted after ${fault.holdMs} ms`,
      );
      server.kill("SIGKILL");
      await server.exited();
      await sleep(fault.holdMs);
      await server.restart();
      await cluster.nats.waitFormed(30_000);
      r.healedAt = Date.now();
      return r;
    }
    case "total":
      return totalLoss(cluster, job, fault, record);
    case "jetstream-outage":
      return jetstreamOutage(cluster, job, fault, record);
    default: {
      const never: never = fault.kind;
      throw new Error(`unknown fault kind ${String(never)}`);
    }
  }
}

/** Makes the record of a fault as it takes effect (see {@link injectFault}). */
type Recorder = (target: string, detail: string) => FaultRecord;

/**
 * Every daemon SIGKILLed at once (their counters scraped first), all restarted together after
 * `holdMs`: no process holds the parameters any more, so the job must come back from its latest
 * complete checkpoint (adopted by a restarted daemon's orphan watcher).
 */
async function totalLoss(
  cluster: ChaosCluster,
  job: JobView,
  fault: PlannedFault,
  record: Recorder,
): Promise<FaultRecord> {
  const checkpoint = await firstCheckpoint(job);
  await cluster.scrapeAll();
  const pids = cluster.daemons.map((d) => `${d.nodeId} pid ${d.pid}`).join(", ");
  const r = record(
    "all daemons",
    `SIGKILL ${pids} at once${checkpoint}; all restarted after ${fault.holdMs} ms`,
  );
  await Promise.all(cluster.daemons.map((d) => d.kill()));
  await sleep(fault.holdMs);
  // Together, as after a power loss of the rack: each waits for its own ready line.
  await Promise.all(cluster.daemons.map((d) => d.start()));
  r.healedAt = Date.now();
  r.detail += ` as ${cluster.daemons.map((d) => `${d.nodeId} incarnation ${d.incarnation}`).join(", ")}`;
  return r;
}

/**
 * Every nats-server stopped (SIGKILL or SIGTERM, by the seed's draw) for `holdMs`, longer than the
 * daemons' identity TTL, then all restarted on their ports with their store dirs: the daemons
 * keep running, lose their identity leases and re-incarnate, so every actor of the job dies and
 * the job must come back from its latest complete checkpoint.
 */
async function jetstreamOutage(
  cluster: ChaosCluster,
  job: JobView,
  fault: PlannedFault,
  record: Recorder,
): Promise<FaultRecord> {
  const checkpoint = await firstCheckpoint(job);
  await cluster.scrapeAll();
  const signal: NodeJS.Signals = fault.targetDraw < 0.5 ? "SIGKILL" : "SIGTERM";
  const servers = cluster.nats.servers;
  const r = record(
    "all nats-servers",
    `${signal} ${servers.map((s) => `${s.serverName} (pid ${s.pid})`).join(", ")}${checkpoint}; restarted with their stores after ${fault.holdMs} ms (identity TTL ${IDENTITY_TTL_MS} ms)`,
  );
  for (const s of servers) s.kill(signal);
  // A graceful stop that hangs (SIGTERM) is cut short: the outage must not outlast its plan by much.
  const stopped = await Promise.race([Promise.all(servers.map((s) => s.exited())), sleep(10_000, "slow")]);
  if (stopped === "slow") {
    r.detail += "; a server still ran 10 s after SIGTERM: SIGKILLed";
    for (const s of servers) s.kill("SIGKILL");
    await Promise.all(servers.map((s) => s.exited()));
  }
  await sleep(fault.holdMs);
  // Together: a JetStream cluster needs a quorum of its servers to elect a meta leader.
  await Promise.all(servers.map((s) => s.restart()));
  await cluster.nats.waitFormed(60_000);
  r.healedAt = Date.now();
  return r;
}

/** Waits (bounded) for the job's first complete checkpoint; says in words when there was none. */
async function firstCheckpoint(job: JobView): Promise<string> {
  const deadline = Date.now() + CHECKPOINT_WAIT_MS;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    const step = await job.checkpointStep();
    if (typeof step === "number") return ` (latest complete checkpoint: step ${step})`;
    await sleep(250);
  }
  return ` (no complete checkpoint after ${CHECKPOINT_WAIT_MS / 1000} s of waiting)`;
}

/** The node a fault hits: the lease holder for a coordinator fault (kill or pause), else a running node other than it. */
async function pickNode(cluster: ChaosCluster, job: JobView, fault: PlannedFault): Promise<string> {
  const holder = await job.coordinatorNode();
  if (fault.kind === "coordinator" || fault.kind === "coordinator-pause") {
    if (!holder) throw new Error("no node holds the coordinator's lease");
    return holder;
  }
  const eligible = cluster.daemons
    .filter((d) => d.running && !d.isPaused && d.nodeId !== holder)
    .map((d) => d.nodeId);
  if (eligible.length === 0)
    throw new Error(`no node to ${fault.kind} (all are down or hold the coordinator)`);
  return eligible[Math.floor(fault.targetDraw * eligible.length)]!;
}
