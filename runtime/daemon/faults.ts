/**
 * Fault injection for tests and in-process chaos (the embedded cluster's kill): the one explicit
 * entry point that reaches into a node. Not exported from `runtime/daemon/index.ts` or the package
 * entry; a production caller has to import this file by name.
 * @module
 */
import type { FlockNode } from "./node.js";
import { crashOf } from "./crash-registry.js";

/**
 * Stops `node` abruptly, as a killed process would: no goodbye heartbeat, its identity and monitor
 * leases abandoned (left to expire or be taken over), its actors stopped. Peers detect it as dead
 * through missed heartbeats. Resolves when the node is down (status `crashed`).
 * @throws TypeError when `node` was not started by `startNode`.
 */
export async function crashNode(node: FlockNode): Promise<void> {
  const crash = crashOf(node);
  if (!crash) throw new TypeError(`node ${node.nodeId} was not started by startNode: cannot crash it`);
  await crash();
}
