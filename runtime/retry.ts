import { holdOpen, systemScheduler, type Scheduler } from "./clock.js";

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Give up after this long (default 30 s). */
  forMs?: number;
  /** First pause between attempts (default 100 ms); doubles up to `maxDelayMs`. */
  delayMs?: number;
  maxDelayMs?: number;
  /** Called after each failed attempt that will be retried. */
  onRetry?: (error: unknown, attempt: number) => void;
  /** Stop early (e.g. the caller was fenced off); the last error is thrown. */
  abort?: () => boolean;
  /** Clock of the deadline and the pauses (default {@link systemScheduler}). */
  scheduler?: Scheduler;
}

/**
 * Runs `fn` until it succeeds, backing off exponentially, for a bounded time: for writes to
 * JetStream that fail while a NATS server restarts or a stream leader is re-elected (seconds).
 */
export async function retry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const clock = opts.scheduler ?? systemScheduler;
  const deadline = clock.now() + (opts.forMs ?? 30_000);
  let delay = opts.delayMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (clock.now() + delay > deadline || opts.abort?.()) throw error;
      opts.onRetry?.(error, attempt);
      await holdOpen(clock.sleep(delay));
      delay = Math.min(opts.maxDelayMs ?? 2_000, delay * 2);
    }
  }
}
