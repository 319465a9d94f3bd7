/**
 * "Stop without letting go": what a dead process does to its leases. Leases, lease candidates and
 * membership monitors register how to abandon themselves here instead of offering it as a method
 * or option on their public interfaces. Only the node's own shutdown (a crash, or a node that
 * failed because its id was taken) and the fault entry point (`runtime/daemon/faults.ts`) use it;
 * it is not exported from `runtime/cluster/index.ts`.
 * @internal
 * @module
 */

const abandoners = new WeakMap<object, () => void | Promise<void>>();

/** Registers how `owner` stops renewing without releasing (called by its implementation). */
export function registerAbandon(owner: object, abandon: () => void | Promise<void>): void {
  abandoners.set(owner, abandon);
}

/**
 * Stops `owner` (a lease, candidate or monitor) as if its process had died: no more renewals, no
 * release; its key stays until its TTL runs out or someone takes it over. A no-op for objects that
 * registered nothing.
 */
export async function abandon(owner: object): Promise<void> {
  await abandoners.get(owner)?.();
}
