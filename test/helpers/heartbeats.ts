/**
 * Heartbeat frames for tests that feed membership directly.
 * @module
 */
import type { Heartbeat } from "../../runtime/cluster/heartbeat.js";

/** A well-formed `alive` heartbeat of `node`'s incarnation `inc`, one free slot; `over` replaces fields. */
export function heartbeat(node: string, inc: string, over: Partial<Heartbeat> = {}): Heartbeat {
  return {
    t: "hb",
    v: 1,
    node,
    inc,
    seq: 0,
    state: "alive",
    slots: 1,
    freeSlots: 1,
    device: "cpu",
    load: 0,
    lagMs: 0,
    actors: {},
    sentAt: 0,
    ...over,
  };
}
