/** The flock node: one actor system, membership, slots, under an identity lease. */
export {
  startNode,
  type FlockNode,
  type NodeOptions,
  type NodeStatus,
  type NodeStopped,
  type NodeRejoined,
} from "./node.js";
export { SlotLedger, type Slots } from "./slots.js";
export { claimIdentity, identityKey, holderOf, type ClaimIdentityOptions } from "./identity.js";
export { serveMetrics, type MetricsServer } from "./metrics-server.js";
