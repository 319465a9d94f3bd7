/**
 * How each live node crashes itself, keyed by the node object. The node implementation registers
 * here; only the fault entry point (`faults.ts`) reads it, so `FlockNode` has no crash method and
 * nothing exported from `runtime/daemon/index.ts` can crash a node.
 * @internal
 * @module
 */
const crashes = new WeakMap<object, () => Promise<void>>();

/** Called by the node implementation with its own crash procedure. */
export function registerCrash(node: object, crash: () => Promise<void>): void {
  crashes.set(node, crash);
}

/** The registered crash procedure of `node`, if it is a node started by `startNode`. */
export function crashOf(node: object): (() => Promise<void>) | undefined {
  return crashes.get(node);
}
