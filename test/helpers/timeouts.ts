/**
 * Timeouts that grow on slow CI machines.
 * @module
 */

/** Factor applied to test timeouts: 3 when the `CI` environment variable is set (and not "false"/"0"). */
export const TIMEOUT_FACTOR: number = isCi() ? 3 : 1;

/** `ms` scaled by {@link TIMEOUT_FACTOR}. */
export function scaleTimeout(ms: number): number {
  return ms * TIMEOUT_FACTOR;
}

function isCi(): boolean {
  const ci = process.env["CI"];
  return ci !== undefined && ci !== "" && ci !== "false" && ci !== "0";
}
