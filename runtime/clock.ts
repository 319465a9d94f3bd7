/**
 * One clock and scheduler for everything whose behaviour depends on time (leases, coordinator,
 * trainer, reducer, node). Production code gets {@link systemScheduler}; unit tests inject a
 * {@link VirtualScheduler} and move time by hand, so scenarios run in milliseconds, never on sleeps.
 */

/** A pending timer; `cancel` is idempotent. */
export interface Timer {
  cancel(): void;
}

/**
 * Time in ms since the epoch. {@link systemScheduler}'s is `Date.now()` at process start, then
 * monotonic (a step of the system clock does not move it), because leases and failure detection
 * measure intervals with it: a clock set back must not stretch a lease past the server's TTL.
 */
export interface Clock {
  now(): number;
}

/** A clock that also runs callbacks later. Timers never keep the process alive (they are `unref`ed). */
export interface Scheduler extends Clock {
  /** Runs `fn` once, `ms` from now. */
  after(ms: number, fn: () => void): Timer;
  /** Runs `fn` every `ms`, first `ms` from now, until cancelled. */
  every(ms: number, fn: () => void): Timer;
  /** Resolves `ms` from now (on this scheduler's time). */
  sleep(ms: number): Promise<void>;
}

/** The real clock (anchored at the epoch, monotonic) and Node's timers. */
export const systemScheduler: Scheduler = {
  now: () => performance.timeOrigin + performance.now(),
  after(ms, fn) {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
  every(ms, fn) {
    const handle = setInterval(fn, ms);
    handle.unref();
    return { cancel: () => clearInterval(handle) };
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()),
};

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  period?: number;
  cancelled: boolean;
}

/**
 * Virtual time for tests: nothing runs until {@link advance} (or {@link runFor}) moves the clock;
 * due timers then fire in time order (ties in scheduling order), each seeing `now()` at its due time.
 */
export class VirtualScheduler implements Scheduler {
  private time: number;
  private seq = 0;
  private queue: Scheduled[] = [];

  constructor(start = 1_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): Timer {
    return this.add(ms, fn);
  }

  every(ms: number, fn: () => void): Timer {
    return this.add(ms, fn, Math.max(1, ms));
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.add(ms, resolve));
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.queue.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.time + Math.max(0, ms);
    for (;;) {
      this.queue = this.queue.filter((t) => !t.cancelled);
      this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.queue[0];
      if (!next || next.at > end) break;
      this.time = Math.max(this.time, next.at);
      if (next.period !== undefined) next.at += next.period;
      else next.cancelled = true;
      next.fn();
    }
    this.time = end;
  }

  /**
   * Moves time forward by `ms` in steps of `stepMs`, letting promise callbacks run between steps
   * (for code that awaits between timers, such as a lease renewal loop).
   */
  async runFor(ms: number, stepMs = 10): Promise<void> {
    for (let left = ms; left > 0; left -= stepMs) {
      this.advance(Math.min(stepMs, left));
      for (let i = 0; i < 5; i++) await Promise.resolve();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private add(ms: number, fn: () => void, period?: number): Timer {
    const entry: Scheduled = {
      at: this.time + Math.max(0, ms),
      seq: this.seq++,
      fn,
      period,
      cancelled: false,
    };
    this.queue.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }
}

/**
 * Keeps the process alive until `pending` settles, and returns it. The scheduler's timers never
 * keep a process alive; a wait that must not be cut short by an empty event loop (a retry pause,
 * a node claiming its identity) wraps its sleep in this, as a ref'd `setTimeout` used to do.
 */
export async function holdOpen<T>(pending: Promise<T>): Promise<T> {
  const handle = setInterval(() => undefined, 1 << 30);
  try {
    return await pending;
  } finally {
    clearInterval(handle);
  }
}
