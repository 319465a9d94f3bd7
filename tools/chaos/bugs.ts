/**
 * Deliberate bugs the chaos harness can build into the daemons it starts, to prove it notices
 * when an invariant breaks (`flock chaos --inject-bug NAME`). They reach a daemon only through
 * the test entry point `faulty-daemon.ts`; the production daemon has no way to switch them on.
 * @module
 */
import type { SetupOptions } from "../../actors/kinds.js";

/** Every bug the harness can inject. */
export const INJECTABLE_BUGS = ["reducer-keeps-dead-slices"] as const;
/** A bug the harness can inject: `reducer-keeps-dead-slices` makes reducers sum every buffered slice of a step, not just the commit set's. */
export type InjectableBug = (typeof INJECTABLE_BUGS)[number];

/** Parses a comma-separated list of bug names; throws `RangeError` on an unknown one. */
export function parseInjectableBugs(value: string): InjectableBug[] {
  const names = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return names.map((name) => {
    const bug = INJECTABLE_BUGS.find((b) => b === name);
    if (!bug) throw new RangeError(`unknown bug "${name}"; known: ${INJECTABLE_BUGS.join(", ")}`);
    return bug;
  });
}

/** The `setupNode` faults that build these bugs in. */
export function faultsFor(bugs: readonly InjectableBug[]): NonNullable<SetupOptions["faults"]> {
  return { reducer: { keepDeadSlices: bugs.includes("reducer-keeps-dead-slices") } };
}
