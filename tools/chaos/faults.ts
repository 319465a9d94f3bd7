/**
 * Injecting and healing each kind of fault on a {@link ChaosCluster}.
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ChaosCluster } from "./cluster.js";
import type { FaultKind, PlannedFault } from "./schedule.js";

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
}

/**
 * Injects `fault`, holds it for `holdMs`, heals it, and resolves with its record. Node faults
 * (kill, pause, partition, slow) spare the node holding the coordinator's lease, so that the
 * coordinator is lost exactly when a `coordinator` or `coordinator-pause` fault says so. A paused
 * holder is deposed while it sleeps; when it runs again its timers, lease renewal and any state
 * write it had in flight go out late, and must not corrupt what its successor did.
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
    default: {
      const never: never = fault.kind;
      throw new Error(`unknown fault kind ${String(never)}`);
    }
  }
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
