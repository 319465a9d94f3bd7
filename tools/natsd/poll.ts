/**
 * A named, bounded poll: used for readiness checks, so a hang always ends with an error that says
 * what was awaited.
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";
import { PollTimeoutError } from "./errors.js";

/** Options of {@link pollUntil}. */
export interface PollOptions {
  /** Give up after this long (default 10 000 ms). */
  timeoutMs?: number;
  /** Pause between attempts (default 50 ms). */
  intervalMs?: number;
  /** Stops the poll early; the poll then rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Calls `probe` until it returns a value other than `undefined`/`false`, and resolves with it.
 * A probe that throws counts as "not yet"; its last error becomes the timeout's `cause`.
 * Bounded by time even when a probe hangs (a probe still running at the deadline is abandoned),
 * and so by count: at most timeoutMs / intervalMs + 1 attempts.
 */
export async function pollUntil<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: PollOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      const value = await withDeadline(probe(), deadline - Date.now());
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new PollTimeoutError(`${what} (${attempt + 1} attempts)`, timeoutMs, { cause: lastError });
    }
    await sleep(Math.min(intervalMs, left), undefined, { signal: options.signal });
  }
}

const PROBE_TIMED_OUT = Symbol("probe timed out");

async function withDeadline<T>(value: T | Promise<T>, ms: number): Promise<T> {
  if (!(value instanceof Promise)) return value;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof PROBE_TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(PROBE_TIMED_OUT), Math.max(0, ms));
  });
  try {
    const result = await Promise.race([value, timeout]);
    if (result === PROBE_TIMED_OUT) {
      value.catch(() => undefined); // the abandoned probe may still reject later
      throw new Error("probe still running at the deadline");
    }
    return result;
  } finally {
    clearTimeout(timer);
  }
}
