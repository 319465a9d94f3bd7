/**
 * Holds the dashboard's state and hands it to the browsers that follow it: every event goes through
 * the pure fold, and each follower gets at most one delta per `pushMs` (a burst of heartbeats and
 * step events becomes one message), always against the version it was last sent.
 * @module
 */
import { systemScheduler, type Scheduler, type Timer } from "../../runtime/clock.js";
import { diff, type DashDelta } from "./delta.js";
import { DEFAULT_LIMITS, type DashEvent, type DashLimits, type DashState } from "./types.js";
import { initialState, reduce } from "./view.js";

/** One follower: a browser's event stream. */
export interface Follower {
  snapshot(state: DashState): void;
  delta(delta: DashDelta): void;
}

/** Options of {@link DashboardHub}. */
export interface HubOptions {
  cluster: string;
  limits?: DashLimits;
  /** Least time between two pushes (default 250 ms). */
  pushMs?: number;
  scheduler?: Scheduler;
}

/** The state of the dashboard and its followers. */
export class DashboardHub {
  private current: DashState;
  /** The state each follower was last sent. */
  private readonly followers = new Map<Follower, DashState>();
  private timer: Timer | undefined;
  private readonly clock: Scheduler;
  private readonly limits: DashLimits;
  private readonly pushMs: number;

  constructor(opts: HubOptions) {
    this.clock = opts.scheduler ?? systemScheduler;
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.pushMs = opts.pushMs ?? 250;
    this.current = initialState(opts.cluster, this.clock.now());
  }

  /** The state now. */
  get state(): DashState {
    return this.current;
  }

  /** Folds one event; schedules a push when it changed the state. */
  dispatch(event: DashEvent): void {
    const next = reduce(this.current, event, this.limits);
    if (next === this.current) return;
    this.current = next;
    this.timer ??= this.clock.after(this.pushMs, () => this.push());
  }

  /** Adds a follower and sends it the whole state; returns its removal. */
  follow(f: Follower): () => void {
    this.followers.set(f, this.current);
    f.snapshot(this.current);
    return () => this.followers.delete(f);
  }

  /** Followers now. */
  get size(): number {
    return this.followers.size;
  }

  /** Stops the push timer (followers are the server's to close). */
  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.followers.clear();
  }

  private push(): void {
    this.timer = undefined;
    for (const [f, sent] of this.followers) {
      if (sent === this.current) continue;
      this.followers.set(f, this.current);
      try {
        f.delta(diff(sent, this.current));
      } catch {
        // A broken stream: the server removes it when its socket closes.
      }
    }
  }
}
