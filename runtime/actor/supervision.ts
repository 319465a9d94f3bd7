/** What a failing actor does with itself; the OTP vocabulary. */
export type SupervisionStrategy = "restart" | "resume" | "stop" | "escalate";

/**
 * How an actor is supervised. `restart` re-runs its `init` (children stopped first, so `init`
 * respawns them); `resume` keeps its state and goes on with the next message; `stop` ends it;
 * `escalate` fails its parent. Restart intensity is as OTP's: more than `maxRestarts` failures
 * within `withinMs` escalate instead. Each restart waits an exponential backoff first, messages
 * queueing meanwhile.
 */
export interface SupervisionPolicy {
  strategy: SupervisionStrategy;
  maxRestarts: number;
  withinMs: number;
  backoff: { minMs: number; maxMs: number; factor: number };
}

/** Restart, at most 3 times in 10 s, backing off from 50 ms to 5 s. */
export const DEFAULT_SUPERVISION: SupervisionPolicy = {
  strategy: "restart",
  maxRestarts: 3,
  withinMs: 10_000,
  backoff: { minMs: 50, maxMs: 5_000, factor: 2 },
};

/** A policy with some fields overridden. */
export function supervision(overrides: Partial<SupervisionPolicy> = {}): SupervisionPolicy {
  return {
    ...DEFAULT_SUPERVISION,
    ...overrides,
    backoff: { ...DEFAULT_SUPERVISION.backoff, ...overrides.backoff },
  };
}

/** What to do about one failure. */
export type SupervisionDecision =
  { action: "restart" | "resume"; delayMs: number } | { action: "stop" | "escalate" };

/** Counts failures in the intensity window and turns a policy into a decision for each failure. */
export class RestartTracker {
  private failures: number[] = [];

  constructor(
    private readonly policy: SupervisionPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /** The decision for a failure happening now. */
  decide(): SupervisionDecision {
    const { strategy, maxRestarts, withinMs, backoff } = this.policy;
    if (strategy === "stop" || strategy === "escalate") return { action: strategy };
    const t = this.now();
    this.failures = this.failures.filter((at) => t - at < withinMs);
    this.failures.push(t);
    if (this.failures.length > maxRestarts) return { action: "escalate" };
    if (strategy === "resume") return { action: "resume", delayMs: 0 };
    const n = this.failures.length;
    const delayMs = Math.min(backoff.maxMs, backoff.minMs * Math.pow(backoff.factor, n - 1));
    return { action: "restart", delayMs };
  }
}
