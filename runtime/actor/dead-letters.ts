import type { Metrics } from "../metrics.js";

const DEAD_LETTERS_HELP = "Messages that reached no actor, by reason";

/** A message that reached no actor. */
export interface DeadLetter {
  to: string;
  from?: string;
  type: string;
  reason: string;
  at: number;
}

/**
 * Where undeliverable messages go: to an actor that does not exist or has stopped, replies nobody
 * waits for, and refused input. Counted by reason, the latest kept in a ring, and observable.
 */
export class DeadLetters {
  private readonly ring: DeadLetter[] = [];
  private readonly listeners = new Set<(d: DeadLetter) => void>();

  constructor(
    private readonly metrics: Metrics,
    private readonly capacity = 200,
  ) {
    metrics.declare("flock_dead_letters_total", "counter", DEAD_LETTERS_HELP, ["reason"]);
  }

  /** Records one dead letter. */
  record(letter: Omit<DeadLetter, "at">): void {
    const d = { ...letter, at: Date.now() };
    this.metrics.inc("flock_dead_letters_total", { reason: d.reason }, 1, DEAD_LETTERS_HELP);
    this.ring.push(d);
    if (this.ring.length > this.capacity) this.ring.shift();
    for (const l of this.listeners) {
      try {
        l(d);
      } catch (error) {
        setImmediate(() => process.emitWarning(`dead-letter listener threw: ${(error as Error).message}`));
      }
    }
  }

  /** The latest dead letters, oldest first. */
  recent(): readonly DeadLetter[] {
    return [...this.ring];
  }

  /** How many dead letters so far, all reasons together. */
  get count(): number {
    return this.metrics.total("flock_dead_letters_total");
  }

  /** Counts by reason. */
  byReason(): Record<string, number> {
    return this.metrics.byLabel("flock_dead_letters_total", "reason");
  }

  /** Subscribes to dead letters as they happen. */
  subscribe(listener: (d: DeadLetter) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
