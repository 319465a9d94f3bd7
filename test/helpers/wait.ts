/**
 * A named, bounded poll for tests.
 * @module
 */
import { pollUntil, PollTimeoutError } from "../../tools/natsd/index.js";
import { scaleTimeout } from "./timeouts.js";

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this long (default 5000 ms, ×3 under CI). */
  timeoutMs?: number;
  /** Pause between attempts (default 50 ms). */
  intervalMs?: number;
}

/**
 * Polls `predicate` until it returns a truthy value (not `undefined`/`false`) and resolves with it.
 * A predicate that throws counts as "not yet". On timeout, rejects with a {@link PollTimeoutError}
 * that names `what`, whose stack points at the caller, and whose `cause` is the last thrown error.
 */
export async function waitFor<T>(
  what: string,
  predicate: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitForOptions = {},
): Promise<T> {
  const callSite = new Error();
  Error.captureStackTrace(callSite, waitFor);
  try {
    return await pollUntil(what, predicate, {
      timeoutMs: scaleTimeout(options.timeoutMs ?? 5000),
      intervalMs: options.intervalMs ?? 50,
    });
  } catch (err) {
    if (err instanceof PollTimeoutError && callSite.stack) {
      err.stack = `${err.name}: ${err.message}\n${callSite.stack.split("\n").slice(1).join("\n")}`;
    }
    throw err;
  }
}
