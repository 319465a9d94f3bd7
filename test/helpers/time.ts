/**
 * Time for tests that run the same scenario on virtual time (unit tests, in-memory stores) and on
 * real time (integration tests against a nats-server, whose TTLs run on the server's clock).
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";
import { systemScheduler, VirtualScheduler, type Scheduler } from "../../runtime/clock.js";
import { PollTimeoutError } from "../../tools/natsd/index.js";
import { waitFor } from "./wait.js";

/** How a test lets time pass. */
export interface TestTime {
  /** The scheduler to inject into the code under test. */
  readonly scheduler: Scheduler;
  /** Lets `ms` pass (virtual: moves the clock, running due timers and the promises they start). */
  pass(ms: number): Promise<void>;
  /**
   * Lets time pass until `predicate` returns a truthy value, and resolves with it; rejects with a
   * {@link PollTimeoutError} naming `what` once `timeoutMs` has passed (on this time).
   */
  until<T>(
    what: string,
    predicate: () => T | undefined | false | Promise<T | undefined | false>,
    timeoutMs: number,
  ): Promise<T>;
}

/** Real time: sleeps and {@link waitFor}. */
export function realTime(): TestTime {
  return {
    scheduler: systemScheduler,
    pass: (ms) => sleep(ms),
    until: (what, predicate, timeoutMs) => waitFor(what, predicate, { timeoutMs }),
  };
}

/** Virtual time on a fresh {@link VirtualScheduler}, moved in steps of `stepMs` (default 10). */
export function virtualTime(
  stepMs = 10,
  scheduler = new VirtualScheduler(),
): TestTime & { scheduler: VirtualScheduler } {
  return {
    scheduler,
    pass: (ms) => scheduler.runFor(ms, stepMs),
    async until(what, predicate, timeoutMs) {
      const end = scheduler.now() + timeoutMs;
      for (let attempts = 1; ; attempts++) {
        const value = await predicate();
        if (value !== undefined && value !== false) return value;
        if (scheduler.now() >= end)
          throw new PollTimeoutError(`${what} (${attempts} attempts, virtual time)`, timeoutMs);
        await scheduler.runFor(stepMs, stepMs);
      }
    },
  };
}
