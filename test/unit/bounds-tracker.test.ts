import assert from "node:assert/strict";
import { test } from "node:test";
import type { Heartbeat } from "../../runtime/cluster/heartbeat.js";
import { MembershipTracker, TRACKER_EVICTIONS_METRIC } from "../../runtime/cluster/tracker.js";
import { Metrics } from "../../runtime/metrics.js";
import { heartbeat } from "../helpers/heartbeats.js";

function hb(node: string, inc: string, state: Heartbeat["state"] = "alive"): Heartbeat {
  return heartbeat(node, inc, { state });
}

test("ended incarnations are remembered for at most maxEndedNodes node ids, oldest evicted first", () => {
  const metrics = new Metrics();
  const t = new MembershipTracker({ now: () => 0, maxEndedNodes: 3, metrics });
  // Each forged node id says goodbye at once: its incarnation ends and is remembered for fencing.
  for (let i = 0; i < 10; i++) t.observe(hb(`n${i}`, "i1", "left"));
  assert.equal(t.hasEnded("n9", "i1"), true);
  assert.equal(t.hasEnded("n7", "i1"), true);
  assert.equal(t.hasEnded("n6", "i1"), false, "evicted");
  assert.equal(metrics.get(TRACKER_EVICTIONS_METRIC, { map: "ended" }), 7);
});

test("recently ended node ids stay: a node id ending again moves to the back", () => {
  const t = new MembershipTracker({ now: () => 0, maxEndedNodes: 2 });
  t.observe(hb("a", "1", "left"));
  t.observe(hb("b", "1", "left"));
  t.observe(hb("a", "2", "left")); // a ends again: b is now the oldest
  t.observe(hb("c", "1", "left"));
  assert.equal(t.hasEnded("a", "1"), true);
  assert.equal(t.hasEnded("b", "1"), false);
});

test("node records are capped: an over record is evicted for a newcomer; live ones are never pushed out", () => {
  const metrics = new Metrics();
  const t = new MembershipTracker({ now: () => 0, maxNodes: 3, metrics });
  t.observe(hb("a", "1"));
  t.observe(hb("b", "1"));
  t.observe(hb("gone", "1", "left")); // left and fenced: over
  t.observe(hb("c", "1"));
  assert.deepEqual(
    t.nodes().map((n) => n.node),
    ["a", "b", "c"],
  );
  assert.equal(metrics.get(TRACKER_EVICTIONS_METRIC, { map: "nodes" }), 1);
  for (let i = 0; i < 1000; i++) t.observe(hb(`forged-${i}`, "x"));
  assert.equal(t.nodes().length, 3);
  assert.deepEqual(
    t.nodes().map((n) => n.state),
    ["alive", "alive", "alive"],
  );
  assert.equal(metrics.get(TRACKER_EVICTIONS_METRIC, { map: "refused" }), 1000);
});
