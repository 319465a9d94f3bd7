/**
 * When a client following a job reads the job's durable state record, and what ends the follow.
 * The job's events topic is at-most-once: the one `job.finished` may be lost (published as a NATS
 * server dies, or while the client reconnects). The state record the coordinator persists under
 * its lease term is durable, so a follower that hears nothing for a while reads it, and the record's
 * end ends the follow. The decisions are pure ({@link FollowState}, time passed in); the loop
 * ({@link followLoop}) runs them on an injected {@link Scheduler} around an injected reader.
 * @module
 */
import type { TrainResult } from "../../messages/index.js";
import type { Scheduler } from "../../runtime/clock.js";

/** Timings of a follow. */
export interface FollowTimings {
  /** Read the record after this long without a live event. */
  silenceMs: number;
  /** While silent, read again this long after the last read ended. */
  pollMs: number;
  /**
   * Read at least this often even while events flow: any member may publish on the job's events
   * topic, so a stream of (forged) events must not keep the follower from the record forever.
   */
  pollAnywayMs: number;
  /** Give up when nothing shows the job exists (no event, no record, no coordinator lease) for this long. */
  appearWithinMs: number;
  /** How often the loop checks whether a read is due. */
  tickMs: number;
}

/** Defaults: read after 3 s of silence, then every 3 s; at least every 15 s; the job must show within 30 s. */
export const DEFAULT_FOLLOW_TIMINGS: FollowTimings = {
  silenceMs: 3000,
  pollMs: 3000,
  pollAnywayMs: 15_000,
  appearWithinMs: 30_000,
  tickMs: 250,
};

/** What one read of the job's durable state found. */
export type RecordRead =
  /** The store could not be reached (or the bucket does not exist yet): nothing learned. */
  | { kind: "unreachable"; why: string }
  /** The record is there but does not decode: treated as "not yet", never as an end. */
  | { kind: "unreadable"; why: string }
  /** No record; `leased`: a coordinator holds the job's lease (it is being placed). */
  | { kind: "absent"; leased: boolean }
  | { kind: "running"; step: number }
  | { kind: "finished"; result: TrainResult }
  | { kind: "failed"; error: string };

/** How a follow ended. */
export type FollowEnd =
  | { kind: "finished"; result: TrainResult; via: "event" | "record" }
  | { kind: "failed"; error: string; via: "event" | "record" }
  /** Nothing showed the job exists within {@link FollowTimings.appearWithinMs}. */
  | { kind: "unknown"; error: string }
  /** The client's connection closed for good (it was closed, or gave up reconnecting). */
  | { kind: "lost"; error: string };

/** The follower's decisions, as a pure state over the times it is told. */
export class FollowState {
  private lastHeard: number;
  private lastRead: number;
  private reading = false;
  private readSoon = false;
  private seen = false;
  /** Reads that found the store unreachable or the record unreadable (for logs). */
  failedReads = 0;

  constructor(
    private readonly job: string,
    private readonly t: FollowTimings,
    private readonly startedAt: number,
  ) {
    this.lastHeard = startedAt;
    // A follow of a job that may be long over reads the record at once.
    this.lastRead = startedAt - Math.max(t.pollMs, t.pollAnywayMs);
  }

  /** A live event of the job arrived: it exists, and is not silent. */
  heard(now: number): void {
    this.lastHeard = now;
    this.seen = true;
  }

  /** Something may have been missed (the client reconnected, an end was refused): read at the next tick. */
  readNow(): void {
    this.readSoon = true;
  }

  /** Whether a read should start at `now` (at most one at a time). */
  wantsRead(now: number): boolean {
    if (this.reading) return false;
    if (this.readSoon) return true;
    const sinceRead = now - this.lastRead;
    if (sinceRead >= this.t.pollAnywayMs) return true;
    return now - this.lastHeard >= this.t.silenceMs && sinceRead >= this.t.pollMs;
  }

  /** A read starts (it ends with {@link readDone}). */
  readStarted(): void {
    this.reading = true;
    this.readSoon = false;
  }

  /** A read ended at `now` with `read`: the end it shows, if any. */
  readDone(read: RecordRead, now: number): FollowEnd | undefined {
    this.reading = false;
    this.lastRead = now;
    switch (read.kind) {
      case "finished":
        return { kind: "finished", result: read.result, via: "record" };
      case "failed":
        return { kind: "failed", error: read.error, via: "record" };
      case "running":
        this.seen = true;
        return undefined;
      case "absent":
        if (read.leased) this.seen = true;
        return this.unknownAt(now);
      default:
        this.failedReads++;
        return undefined;
    }
  }

  /**
   * The follow's end when nothing showed the job exists within the bound. Decided only on a read
   * that answered (absent, no lease): a store that cannot be reached says nothing about the job.
   */
  unknownAt(now: number): FollowEnd | undefined {
    if (this.seen || now - this.startedAt < this.t.appearWithinMs) return undefined;
    return {
      kind: "unknown",
      error: `job ${this.job}: no record, no coordinator and no event within ${this.t.appearWithinMs} ms (unknown job id?)`,
    };
  }
}

/** A running follow: feed it what the live topic brings; `done` settles with the end. */
export interface FollowLoop {
  /** A live event arrived. */
  heard(): void;
  /** A backed end arrived on the live topic. */
  ended(end: FollowEnd): void;
  /** Something may have been missed: read the record at the next tick. */
  readNow(): void;
  readonly done: Promise<FollowEnd>;
  /** Stops the timers (idempotent); `done` stays pending if it had not settled. */
  stop(): void;
}

/** What {@link followLoop} needs. */
export interface FollowLoopDeps {
  job: string;
  scheduler: Scheduler;
  timings: FollowTimings;
  /** Reads the job's durable state; never rejects (a failure is `unreachable`). */
  read: () => Promise<RecordRead>;
  /** Told of each read that learned nothing (for a bounded log). */
  onFailedRead?: (read: RecordRead, count: number) => void;
}

/** Runs {@link FollowState} on a scheduler: ticks decide reads, reads and live ends settle `done`. */
export function followLoop(deps: FollowLoopDeps): FollowLoop {
  const { scheduler } = deps;
  const state = new FollowState(deps.job, deps.timings, scheduler.now());
  let settle!: (end: FollowEnd) => void;
  const done = new Promise<FollowEnd>((resolve) => (settle = resolve));
  let over = false;
  const finish = (end: FollowEnd | undefined): void => {
    if (!end || over) return;
    over = true;
    timer.cancel();
    settle(end);
  };
  const tick = (): void => {
    if (over) return;
    const now = scheduler.now();
    if (!state.wantsRead(now)) return;
    state.readStarted();
    void deps.read().then(
      (read) => {
        if (over) return;
        const end = state.readDone(read, scheduler.now());
        if (!end && (read.kind === "unreachable" || read.kind === "unreadable"))
          deps.onFailedRead?.(read, state.failedReads);
        finish(end);
      },
      // `read` never rejects by contract; a reader that does counts as an unreachable store.
      (error: unknown) =>
        finish(state.readDone({ kind: "unreachable", why: String(error) }, scheduler.now())),
    );
  };
  const timer = scheduler.every(deps.timings.tickMs, tick);
  return {
    heard: () => state.heard(scheduler.now()),
    ended: finish,
    readNow: () => state.readNow(),
    done,
    stop: () => {
      over = true;
      timer.cancel();
    },
  };
}
