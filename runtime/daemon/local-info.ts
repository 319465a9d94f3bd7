import { loadavg } from "node:os";
import type { ActorSystem } from "../actor/index.js";
import type { LocalInfo } from "../cluster/membership.js";
import type { NodeInfo } from "../cluster/types.js";
import type { EventLoopLag, Metrics } from "../metrics.js";
import type { Slots } from "./slots.js";

/** What one node knows about itself, read at every heartbeat. */
export interface LocalSources {
  nodeId: string;
  slots: Slots;
  device: string;
  backend: string | undefined;
  lag: EventLoopLag;
  system: ActorSystem | undefined;
  peers: () => NodeInfo[];
}

/**
 * Builds a node's heartbeat content and refreshes its gauges (slots, event-loop lag, actors by
 * kind, heartbeat age of each live peer) in the same pass, so `/metrics` shows what peers see.
 */
export class LocalInfoReporter {
  private knownKinds = new Set<string>();
  private agedPeers = new Set<string>();

  constructor(private readonly metrics: Metrics) {}

  read(src: LocalSources): LocalInfo {
    const lag = src.lag.read();
    const info: LocalInfo = {
      slots: src.slots.total,
      freeSlots: src.slots.free(),
      device: src.device,
      load: loadavg()[0] ?? 0,
      lagMs: Number.isFinite(lag.p99Ms) ? lag.p99Ms : 0,
      actors: actorsByKind(src.system),
      rssBytes: process.memoryUsage.rss(),
      badInput: Math.round(this.metrics.total("flock_bad_input_total")),
      deadLetters: Math.round(this.metrics.total("flock_dead_letters_total")),
    };
    if (src.backend !== undefined) info.backend = src.backend;
    this.updateGauges(src, info, lag.maxMs);
    return info;
  }

  private updateGauges(src: LocalSources, info: LocalInfo, lagMaxMs: number): void {
    const m = this.metrics;
    m.set("flock_slots", info.slots, {}, "Compute slots of this node");
    m.set("flock_slots_free", info.freeSlots, {}, "Free compute slots of this node");
    const lagHelp = "Event-loop delay of this process since the last heartbeat, p99 and max (seconds)";
    m.set("flock_event_loop_lag_seconds", info.lagMs / 1000, { stat: "p99" }, lagHelp);
    m.set(
      "flock_event_loop_lag_seconds",
      Number.isFinite(lagMaxMs) ? lagMaxMs / 1000 : 0,
      { stat: "max" },
      lagHelp,
    );
    for (const kind of this.knownKinds) if (!(kind in info.actors)) m.set("flock_actors", 0, { kind });
    for (const [kind, n] of Object.entries(info.actors))
      m.set("flock_actors", n, { kind }, "Local actors by kind");
    this.knownKinds = new Set([...this.knownKinds, ...Object.keys(info.actors)]);
    const now = Date.now();
    const live = new Set<string>();
    for (const n of src.peers()) {
      if (n.node === src.nodeId || n.state === "dead" || n.state === "left") continue;
      live.add(n.node);
      m.set(
        "flock_heartbeat_age_seconds",
        Math.max(0, now - n.lastSeen) / 1000,
        { peer: n.node },
        "Time since the last heartbeat from each live peer (seconds)",
      );
    }
    // A peer that died or left stops being exported, rather than staying at its last age.
    for (const peer of this.agedPeers) if (!live.has(peer)) m.remove("flock_heartbeat_age_seconds", { peer });
    this.agedPeers = live;
  }
}

/**
 * Local actors by kind. The kind of an actor is the last segment of its path without a trailing
 * index (`job-7/trainer-2` → `trainer`): the actor system does not record kinds, and names follow
 * `<kind>-<n>` by convention.
 */
export function actorsByKind(system: ActorSystem | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (!system || system.stopped) return out;
  for (const path of system.paths()) {
    const last = path.slice(path.lastIndexOf("/") + 1);
    const kind = last.replace(/[-_.:]?\d+$/, "") || last;
    out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}
