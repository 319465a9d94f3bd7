import type { JobEvent } from "../../messages/index.js";

type StepEvent = Extract<JobEvent, { type: "job.step" }>;

/** A job's events as they arrive, with waits on them (each bounded by a deadline). */
export class JobEvents {
  readonly all: Array<JobEvent & { receivedAt: number }> = [];
  private waiters = new Set<() => void>();

  /** Records one event (pass as `onEvent` to runJob). */
  readonly push = (e: JobEvent): void => {
    this.all.push({ ...e, receivedAt: Date.now() });
    for (const w of [...this.waiters]) w();
  };

  /** Committed steps so far. */
  steps(): StepEvent[] {
    return this.all.filter((e): e is StepEvent & { receivedAt: number } => e.type === "job.step");
  }

  /** Resolves with the first event, from index `from` on, that matches; rejects after `timeoutMs`. */
  waitFor<E extends JobEvent>(
    match: (e: JobEvent) => e is E,
    from: number,
    timeoutMs: number,
    what: string,
  ): Promise<E & { index: number }>;
  waitFor(
    match: (e: JobEvent) => boolean,
    from: number,
    timeoutMs: number,
    what: string,
  ): Promise<JobEvent & { index: number }>;
  waitFor(
    match: (e: JobEvent) => boolean,
    from: number,
    timeoutMs: number,
    what: string,
  ): Promise<JobEvent & { index: number }> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        for (let i = from; i < this.all.length; i++) {
          if (match(this.all[i]!)) {
            done();
            resolve({ ...this.all[i]!, index: i });
            return true;
          }
        }
        if (this.all.some((e) => e.type === "job.finished" || e.type === "job.failed")) {
          done();
          const membership = this.all
            .flatMap((e) =>
              e.type === "job.membership" ? [`${e.event.kind} ${e.event.node} at step ${e.step}`] : [],
            )
            .join("; ");
          reject(new JobEndedError(`the job ended before ${what} (membership: ${membership || "none"})`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const waiter = () => void check();
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
      check();
    });
  }

  /** Members of the job now, from its membership events (joins minus deaths and leaves). */
  members(): Set<string> {
    const members = new Set<string>();
    for (const e of this.all) {
      if (e.type !== "job.membership") continue;
      if (e.event.kind === "join") members.add(e.event.node);
      if (e.event.kind === "death" || e.event.kind === "leave") members.delete(e.event.node);
    }
    return members;
  }
}

/** The job finished (or failed) before the awaited event. */
export class JobEndedError extends Error {
  override name = "JobEndedError";
}

/**
 * Steady-state training throughput: samples of the committed steps after the first `skip`
 * fraction (start-up, JIT), over the time they took.
 */
export function steadySamplesPerSec(steps: readonly StepEvent[], skip = 0.1): number {
  const from = Math.max(3, Math.floor(steps.length * skip));
  if (steps.length < from + 2) return Number.NaN;
  const first = steps[from]!;
  const last = steps.at(-1)!;
  let samples = 0;
  for (const s of steps.slice(from + 1)) samples += s.samples;
  return samples / ((last.at - first.at) / 1000);
}

/** Median and mean time between committed steps, after the first `skip` fraction, in ms. */
export function stepTimes(steps: readonly StepEvent[], skip = 0.1): { medianMs: number; meanMs: number } {
  const from = Math.max(3, Math.floor(steps.length * skip));
  const dts = steps.slice(from + 1).map((s, i) => s.at - steps[from + i]!.at);
  if (dts.length === 0) return { medianMs: Number.NaN, meanMs: Number.NaN };
  const sorted = [...dts].sort((a, b) => a - b);
  return { medianMs: sorted[sorted.length >> 1]!, meanMs: dts.reduce((a, b) => a + b, 0) / dts.length };
}
