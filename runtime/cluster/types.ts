import type { Fence } from "../actor/index.js";
import type { Unsubscribe } from "../transport/index.js";

/** A node's state as the cluster sees it. */
export type NodeState = "alive" | "suspect" | "dead" | "left";

/** What a node announces in every heartbeat, plus what observers derive. */
export interface NodeInfo {
  node: string;
  /** New on every start of the node: a restarted node is a new member. */
  inc: string;
  state: NodeState;
  slots: number;
  freeSlots: number;
  /** Requested device: auto | gpu | cpu | wasm. */
  device: string;
  /** Compute backend the node proved it can run, once known (tensorflow-gpu, tensorflow, wasm, cpu). */
  backend?: string;
  /** 1-minute load average of the host. */
  load: number;
  /** Event-loop lag (p99, ms) of the node's process. */
  lagMs: number;
  /** Local actors by kind. */
  actors: Record<string, number>;
  /** Wall-clock ms of the last heartbeat seen. */
  lastSeen: number;
  /** Wall-clock ms this incarnation was first seen. */
  joinedAt: number;
}

/** A change in the membership view; each one bumps the epoch. */
export interface MembershipEvent {
  kind: "joined" | "suspect" | "alive" | "dead" | "left";
  node: NodeInfo;
  epoch: number;
}

/** One node's view of the cluster: nodes, their states, and an epoch bumped on every change. */
export interface MembershipView {
  readonly epoch: number;
  nodes(): NodeInfo[];
  /** Nodes currently alive (not suspect, dead or left). */
  alive(): NodeInfo[];
  get(node: string): NodeInfo | undefined;
  subscribe(listener: (e: MembershipEvent) => void): Unsubscribe;
  /** Fences off envelopes from dead or superseded incarnations. */
  readonly fence: Fence;
}

/** A held lease. The revision is the fencing token: a holder that lost its lease must stop acting. */
export interface Lease {
  readonly key: string;
  readonly holder: string;
  /** KV revision of the holder's latest write: increases with every renewal. */
  readonly revision: number;
  /** False once the lease was lost (renewal failed or expired) or released. */
  readonly held: boolean;
  /** Called once when the lease is lost (not when released). */
  onLost(listener: (reason: string) => void): Unsubscribe;
  release(): Promise<void>;
}
