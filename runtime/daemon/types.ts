/**
 * The node's public shape: its options, status and lifecycle events, and the {@link FlockNode}
 * interface (implemented in node.ts).
 * @module
 */
import type { ActorSystem } from "../actor/index.js";
import type { Scheduler } from "../clock.js";
import type { MembershipView } from "../cluster/types.js";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { StoreProvider } from "../store/index.js";
import type { Transport, Unsubscribe } from "../transport/index.js";
import type { Slots } from "./slots.js";

/** Options of {@link startNode}. */
export interface NodeOptions {
  nodeId: string;
  /** Cluster name (default `default`); must match the store provider's cluster when it has one. */
  cluster?: string;
  /** Connected transport; the node does not close it. */
  transport: Transport;
  stores: StoreProvider;
  /** Compute slots (default 1). */
  slots?: number;
  /** Requested device (default `auto`). */
  device?: "auto" | "gpu" | "cpu" | "wasm";
  /** Heartbeat interval (default 500 ms). */
  heartbeatMs?: number;
  /** Failure-detection deadline (default 2000 ms). */
  deadAfterMs?: number;
  log?: Logger;
  /** Shared by every incarnation of this node (default: a new one). */
  metrics?: Metrics;
  /** Registers actor kinds etc.; called with each new actor system (at start and after every rejoin). */
  setup?: (node: FlockNode) => void | Promise<void>;
  /**
   * TTL of the identity lease `node.<id>` (default 15 000 ms). Long on purpose: a NATS or JetStream
   * outage shorter than this never costs a node its identity. A restart after a kill does not wait
   * for it: a silent previous holder is taken over after the failure-detection deadline.
   */
  identityTtlMs?: number;
  /** Bound on the drain hooks (default 5000 ms). */
  drainTimeoutMs?: number;
  /** Campaign for the membership-monitor lease and write the cluster view (default true). */
  monitor?: boolean;
  /** Clock and timers of heartbeats, failure detection, leases and drain (default `systemScheduler`). */
  scheduler?: Scheduler;
}

/** Lifecycle of a node. `failed`: it could not go on (e.g. its id was taken over by another process). */
export type NodeStatus = "starting" | "running" | "rejoining" | "draining" | "stopped" | "crashed" | "failed";

/** How a node ended. */
export interface NodeStopped {
  status: "stopped" | "crashed" | "failed";
  error?: Error;
}

/** A rejoin: the node ended one incarnation and started another. */
export interface NodeRejoined {
  previous: string;
  incarnation: string;
  reason: string;
}

/**
 * A flock node: one actor system, its membership view, its slots, under an identity lease.
 *
 * **Rejoin.** When the node learns that the cluster has declared its incarnation dead (an
 * observer's dead notice, e.g. after a SIGSTOP or a network cut longer than the deadline) or that
 * it lost its identity lease, it must not go on as that incarnation. It ends it and starts a new
 * one: heartbeats stop, the membership monitor is released, the actor system is stopped (every
 * local actor stops; pending asks reject), drain hooks registered under the old incarnation are
 * dropped and every slot is freed; then a new incarnation id is drawn, the identity lease is
 * claimed again, and a **new** {@link ActorSystem} starts, `setup(node)` runs again on it, and
 * heartbeats restart. So `node.system` and `node.incarnation` change at a rejoin: read them from
 * the node each time rather than keeping them (listen with {@link onRejoined}). The membership
 * view, stores, slots object and metrics are the same objects for the node's whole life. If the
 * identity cannot be claimed again (another live process now runs this id), the node stops with
 * status `failed` and {@link done} resolves with the error.
 */
export interface FlockNode extends AsyncDisposable {
  readonly nodeId: string;
  /** Current incarnation; changes at a rejoin. */
  readonly incarnation: string;
  readonly cluster: string;
  /** Current actor system; a new one after a rejoin. */
  readonly system: ActorSystem;
  readonly membership: MembershipView;
  readonly stores: StoreProvider;
  readonly device: string;
  /** Compute backend, once known (set by whoever proves one); announced in heartbeats. */
  backend: string | undefined;
  readonly slots: Slots;
  readonly status: NodeStatus;
  readonly metrics: Metrics;
  /** Resolves once the node has stopped for good: stop, drain, crash, or failure. */
  readonly done: Promise<NodeStopped>;
  /** Hooks run by {@link drain} (to hand work back), bounded in time; dropped at a rejoin. */
  onDrain(hook: () => Promise<void>): () => void;
  /** Called after each rejoin, with the new system in place and setup done. */
  onRejoined(listener: (e: NodeRejoined) => void): Unsubscribe;
  /** Announces leaving (heartbeat state `leaving`), runs the drain hooks (bounded), then stops. */
  drain(): Promise<void>;
  /** Stops without drain hooks: a goodbye heartbeat (`left`), leases released, actors stopped. */
  stop(): Promise<void>;
}
