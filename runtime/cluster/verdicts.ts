/**
 * When is a death verdict believed? Failure detection is local: each node declares dead the peers
 * it has not heard from within the deadline, and tells a declared-dead incarnation that still
 * heartbeats so (a dead notice). Obeyed at once, one observer behind a slow link re-incarnated the
 * whole cluster: it declared everyone dead, and everyone obeyed and rejoined, taking every
 * parameter holder with them. So a verdict binds only with the agreement of the accused's peers,
 * and an observer that finds itself alone in its verdicts concludes it is the one cut off
 * (SWIM-style refutation, with the node's own incarnation as the thing that ends):
 *
 * - {@link Accusations} (the accused's side): obey dead notices from a strict majority of the
 *   peers this node considers alive or suspect (or from anyone, when it sees no peer at all); a
 *   minority accusation is obeyed only once it has persisted for `yieldAfterMs` (the accuser
 *   keeps fencing this incarnation off, so it would otherwise stay out of that accuser's jobs).
 * - {@link Refutations} (the accuser's side): incarnations this node declared dead that keep
 *   heartbeating past `refuteAfterMs` have evidently not been declared dead by their peers; when
 *   they are a strict majority of the nodes this node knows, its own view is the odd one: it
 *   pardons them and rejoins as a new incarnation itself.
 *
 * Pure: times are passed in, nothing is sent. Both maps are bounded by {@link MAX_VERDICT_ENTRIES}.
 * @module
 */

/** Entries either side keeps at most (one per accusing or refuting node). */
export const MAX_VERDICT_ENTRIES = 1024;

/** How long verdict evidence counts, and the two patience periods; from the failure deadline. */
export interface VerdictTiming {
  /** A notice or a stale heartbeat older than this no longer counts (they repeat every second). */
  windowMs: number;
  /** Stale heartbeats from a majority for this long: this node's verdicts are refuted. */
  refuteAfterMs: number;
  /** A minority accusation that lasts this long is obeyed after all. */
  yieldAfterMs: number;
}

/** The timing for a failure deadline of `deadAfterMs`. */
export function verdictTiming(deadAfterMs: number): VerdictTiming {
  return { windowMs: 2.5 * deadAfterMs, refuteAfterMs: 1.5 * deadAfterMs, yieldAfterMs: 5 * deadAfterMs };
}

interface Seen {
  first: number;
  last: number;
}

/** Records `key` seen at `now` in a bounded map, keeping when it was first seen in a row. */
function see(map: Map<string, Seen>, key: string, now: number, windowMs: number): void {
  const s = map.get(key);
  if (s && now - s.last <= windowMs) {
    s.last = now;
    return;
  }
  map.delete(key);
  if (map.size >= MAX_VERDICT_ENTRIES) map.delete(map.keys().next().value!);
  map.set(key, { first: now, last: now });
}

function prune(map: Map<string, Seen>, now: number, windowMs: number): void {
  for (const [k, s] of map) if (now - s.last > windowMs) map.delete(k);
}

/** Why an accusation is obeyed. */
export type ObeyReason = "majority" | "no-peers" | "persistent";

/** Dead notices about this node's current incarnation, and whether to obey them. */
export class Accusations {
  private readonly by = new Map<string, Seen>();

  constructor(private readonly timing: VerdictTiming) {}

  /** A dead notice about this incarnation, sent by node `accuser`. */
  note(accuser: string, now: number): void {
    see(this.by, accuser, now, this.timing.windowMs);
  }

  /**
   * Whether to obey, given the peers this node considers alive or suspect (itself excluded):
   * the accusers that count and why, or undefined to stay.
   */
  decide(peers: ReadonlySet<string>, now: number): { accusers: string[]; reason: ObeyReason } | undefined {
    prune(this.by, now, this.timing.windowMs);
    if (this.by.size === 0) return undefined;
    if (peers.size === 0) return { accusers: [...this.by.keys()].sort(), reason: "no-peers" };
    const counted = [...this.by.keys()].filter((a) => peers.has(a)).sort();
    if (counted.length * 2 > peers.size) return { accusers: counted, reason: "majority" };
    const lasting = counted.filter((a) => now - this.by.get(a)!.first >= this.timing.yieldAfterMs);
    if (lasting.length > 0) return { accusers: lasting, reason: "persistent" };
    return undefined;
  }

  /** A new incarnation starts with no accusations. */
  clear(): void {
    this.by.clear();
  }
}

/** Incarnations this node declared dead that keep heartbeating. */
export class Refutations {
  private readonly stale = new Map<string, Seen>();

  constructor(private readonly timing: VerdictTiming) {}

  /** A heartbeat from incarnation `inc` of `node`, which this node had declared ended. */
  note(node: string, inc: string, now: number): void {
    see(this.stale, `${node}\u0000${inc}`, now, this.timing.windowMs);
  }

  /**
   * The incarnations that refute this node's verdicts, when they outnumber the `livePeers` it
   * still considers alive or suspect (itself excluded) and each has kept heartbeating for
   * `refuteAfterMs`; else undefined.
   */
  decide(livePeers: number, now: number): { node: string; inc: string }[] | undefined {
    prune(this.stale, now, this.timing.windowMs);
    const lasting = [...this.stale]
      .filter(([, s]) => now - s.first >= this.timing.refuteAfterMs)
      .map(([k]) => {
        const i = k.indexOf("\u0000");
        return { node: k.slice(0, i), inc: k.slice(i + 1) };
      });
    if (lasting.length === 0 || lasting.length <= livePeers) return undefined;
    return lasting.sort((a, b) => a.node.localeCompare(b.node));
  }

  /** A new incarnation starts with no verdicts of its own. */
  clear(): void {
    this.stale.clear();
  }
}
