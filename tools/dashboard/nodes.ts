/**
 * The nodes part of the dashboard's pure fold: heartbeats in, node rows out, each node's state
 * derived from how long ago the dashboard last heard it (its own clock, so no skew between machines).
 * @module
 */
import type { Heartbeat } from "../../runtime/cluster/heartbeat.js";
import type { DashLimits, DashNode, DashNodeState } from "./types.js";

/** A node row from a heartbeat; `prev` is the same incarnation's row, when there is one. */
function fromHeartbeat(hb: Heartbeat, at: number, prev: DashNode | undefined): DashNode {
  return {
    id: hb.node,
    inc: hb.inc,
    state: announced(hb) ?? "alive",
    slots: hb.slots,
    freeSlots: hb.freeSlots,
    device: hb.device,
    backend: hb.backend ?? null,
    load: hb.load,
    lagMs: hb.lagMs,
    heartbeatAgeMs: 0,
    badInput: hb.badInput ?? null,
    deadLetters: hb.deadLetters ?? null,
    rssBytes: hb.rssBytes ?? null,
    lastHeardAt: at,
    firstHeardAt: prev?.firstHeardAt ?? at,
  };
}

/** The state a heartbeat announces itself, overriding timing. */
function announced(hb: Heartbeat): DashNodeState | undefined {
  if (hb.state === "leaving") return "draining";
  if (hb.state === "left") return "left";
  return undefined;
}

/**
 * Folds one heartbeat. A new incarnation replaces its node's row (a restarted node is a new
 * member); a heartbeat of a node the view has no room for is dropped.
 */
export function observeHeartbeat(
  nodes: readonly DashNode[],
  hb: Heartbeat,
  at: number,
  limits: DashLimits,
): DashNode[] {
  const i = nodes.findIndex((n) => n.id === hb.node);
  const prev = i >= 0 ? nodes[i] : undefined;
  // A dead incarnation stays dead: the cluster fenced it off, whatever it still sends.
  if (prev && prev.inc === hb.inc && prev.state === "dead") return [...nodes];
  const row = fromHeartbeat(hb, at, prev?.inc === hb.inc ? prev : undefined);
  if (i >= 0) return nodes.map((n, k) => (k === i ? row : n));
  if (nodes.length >= limits.maxNodes) return [...nodes];
  return [...nodes, row].sort((a, b) => a.id.localeCompare(b.id));
}

/** The state a node is in at `at`, from its heartbeats' timing. */
function stateAt(n: DashNode, age: number, limits: DashLimits): DashNodeState {
  if (n.state === "dead" || n.state === "left") return n.state;
  if (age > limits.deadAfterMs) return "dead";
  if (n.state === "draining") return "draining";
  return age > limits.suspectAfterMs ? "suspect" : "alive";
}

/** The result of {@link tickNodes}: the rows, and the nodes that died at this tick. */
export interface NodesTick {
  nodes: DashNode[];
  died: string[];
}

/** Moves time on: ages every node, marks the silent ones suspect or dead, forgets the long gone. */
export function tickNodes(nodes: readonly DashNode[], at: number, limits: DashLimits): NodesTick {
  const died: string[] = [];
  const out: DashNode[] = [];
  for (const n of nodes) {
    const age = Math.max(0, at - n.lastHeardAt);
    if ((n.state === "dead" || n.state === "left") && age > limits.forgetAfterMs) continue;
    const state = stateAt(n, age, limits);
    if (state === "dead" && n.state !== "dead") died.push(n.id);
    out.push(state === n.state && age === n.heartbeatAgeMs ? n : { ...n, state, heartbeatAgeMs: age });
  }
  return { nodes: out, died };
}
