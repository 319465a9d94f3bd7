/**
 * A node's side of death verdicts (the rules are in verdicts.ts): takes in the dead notices about
 * this incarnation and the heartbeats of incarnations this node declared dead, and says, once per
 * incarnation, when this incarnation must end. No I/O: it reads the tracker, counts and logs.
 * @module
 */
import type { Clock } from "../clock.js";
import type { RateLimitedLog, Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { Unsubscribe } from "../transport/index.js";
import type { MembershipTracker } from "./tracker.js";
import { Accusations, Refutations, verdictTiming } from "./verdicts.js";

/** What the desk needs from its membership. */
export interface VerdictDeskHost {
  readonly nodeId: string;
  readonly tracker: MembershipTracker;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly rlog: RateLimitedLog;
}

/** Decides when this node's incarnation ends on the word of others, and tells its listeners. */
export class VerdictDesk {
  private readonly accusations: Accusations;
  private readonly refutations: Refutations;
  private readonly listeners = new Set<(reason: string) => void>();
  /** This incarnation already told its listeners to end. */
  private yielded = false;

  constructor(private readonly host: VerdictDeskHost) {
    const timing = verdictTiming(host.tracker.timing.deadAfterMs);
    this.accusations = new Accusations(timing);
    this.refutations = new Refutations(timing);
  }

  /** Called once per incarnation with the reason it must end. */
  listen(listener: (reason: string) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A new incarnation: no accusations, no verdicts of its own. */
  reset(): void {
    this.accusations.clear();
    this.refutations.clear();
    this.yielded = false;
  }

  /** A dead notice about this incarnation from node `by`. */
  accused(by: string): void {
    const now = this.host.clock.now();
    this.accusations.note(by, now);
    const verdict = this.accusations.decide(this.livePeers(), now);
    if (!verdict) {
      this.host.metrics.inc(
        "flock_dead_notices_refused_total",
        {},
        1,
        "Dead notices about this node not obeyed (yet): from a minority of its peers",
      );
      this.host.rlog.warn(
        "dead-minority",
        { by },
        `declared dead by ${by} alone; not rejoining while a majority of peers sees this node alive`,
      );
      return;
    }
    const why =
      verdict.reason === "majority"
        ? ""
        : verdict.reason === "no-peers"
          ? " (it sees no live peer)"
          : " (for longer than the minority's patience)";
    this.end(`declared dead by ${verdict.accusers.join(", ")}${why}`);
  }

  /** A heartbeat from incarnation `inc` of `node`, which this node had declared dead. */
  outlived(node: string, inc: string): void {
    this.refutations.note(node, inc, this.host.clock.now());
    const refuters = this.refutations.decide(this.livePeers().size, this.host.clock.now());
    if (!refuters || this.yielded) return;
    for (const r of refuters) this.host.tracker.pardon(r.node, r.inc);
    this.host.metrics.inc(
      "flock_verdicts_refuted_total",
      {},
      1,
      "Times this node found its death verdicts refuted by a majority and rejoined itself",
    );
    this.end(
      `its verdicts were refuted: ${refuters.map((r) => r.node).join(", ")} kept heartbeating (this node was the one cut off)`,
    );
  }

  /** The nodes this node considers alive or suspect, itself excluded. */
  private livePeers(): Set<string> {
    const peers = new Set<string>();
    for (const n of this.host.tracker.nodes())
      if ((n.state === "alive" || n.state === "suspect") && n.node !== this.host.nodeId) peers.add(n.node);
    return peers;
  }

  private end(reason: string): void {
    if (this.yielded) return;
    this.yielded = true;
    for (const l of [...this.listeners]) {
      try {
        l(reason);
      } catch (error) {
        setImmediate(() => this.host.log.error({ err: error }, "declared-dead listener threw"));
      }
    }
  }
}
