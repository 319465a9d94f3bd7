import type { Failure } from "../messages/index.js";
import type { ActorContext, Message } from "../runtime/actor/index.js";
import type { Logger } from "../runtime/log.js";
import type { Metrics } from "../runtime/metrics.js";

/** The counter of messages the training actors ignored (label `actor`, `type`, `reason`). */
export const IGNORED_MESSAGES_METRIC = "flock_actor_ignored_messages_total";

/**
 * What an actor does with a message it does not handle in its current state (a stale term, a
 * request it cannot serve, a type it never expects): count it and log it once per type and
 * reason, never throw. Input from the wire is hostile, and these actors run under `stop`
 * supervision: a throw would kill a trainer or a reducer over one bad message.
 */
export class IgnoredMessages {
  private readonly logged = new Set<string>();
  private readonly counts = new Map<string, number>();

  /**
   * @param actor - the actor kind, as the metric's `actor` label (e.g. `reducer`).
   * @param metrics - the node's metrics, when it has them.
   */
  constructor(
    private readonly actor: string,
    private readonly metrics?: Metrics,
  ) {}

  /**
   * Counts one ignored message. `reason` is a short fixed code (it is a metric label: no
   * numbers in it); `detail` goes to the log line only.
   */
  note(log: Logger, type: string, reason: string, detail?: string): void {
    const key = `${type} ${reason}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.metrics?.inc(
      IGNORED_MESSAGES_METRIC,
      { actor: this.actor, type, reason },
      1,
      "Messages a training actor ignored: stale, unexpected in its state, or not servable",
    );
    if (this.logged.has(key)) return;
    this.logged.add(key);
    log.warn(
      { actor: this.actor, type, reason, detail },
      "message ignored (logged once per type and reason; counted in flock_actor_ignored_messages_total)",
    );
  }

  /**
   * Counts one message the actor does not handle and, when it is an ask, answers it with a
   * failure, so the asker learns at once instead of waiting out its timeout.
   */
  unhandled<M extends Message>(ctx: ActorContext<M>, type: string, reason: string): void {
    this.note(ctx.log, type, reason);
    if (ctx.isAsk)
      ctx.reply<Failure>({
        type: "sys.failure",
        code: "bad-input",
        message: `${type} not handled: ${reason}`,
      });
  }

  /** How many messages of `type` were ignored for `reason` (for tests). */
  count(type: string, reason: string): number {
    return this.counts.get(`${type} ${reason}`) ?? 0;
  }
}
