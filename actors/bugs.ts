/**
 * Deliberate bugs a chaos test can switch on in the system under test (env `FLOCK_INJECT_BUG`,
 * comma-separated), to prove the harness notices when an invariant breaks. Off unless set.
 * - `reducer-keeps-dead-slices`: reducers sum every buffered slice of a step, not just the commit set's.
 */
export type InjectedBug = "reducer-keeps-dead-slices";

const enabled = new Set(
  (process.env.FLOCK_INJECT_BUG ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);

/** Whether an injected bug is switched on in this process. */
export function injectedBug(bug: InjectedBug): boolean {
  return enabled.has(bug);
}
