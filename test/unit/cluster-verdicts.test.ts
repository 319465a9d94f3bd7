/** When a death verdict binds (runtime/cluster/verdicts.ts): pure, times passed in. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Accusations,
  MAX_VERDICT_ENTRIES,
  Refutations,
  verdictTiming,
} from "../../runtime/cluster/verdicts.js";

const T = verdictTiming(2000); // window 5000, refute after 3000, yield after 10000

test("an accusation binds on a strict majority of live peers, not on one of two", () => {
  const a = new Accusations(T);
  const peers = new Set(["x", "y"]);
  a.note("x", 0);
  assert.equal(a.decide(peers, 0), undefined, "x alone of x, y");
  a.note("y", 10);
  assert.deepEqual(a.decide(peers, 10), { accusers: ["x", "y"], reason: "majority" });
  const three = new Set(["x", "y", "z"]);
  assert.deepEqual(a.decide(three, 10), { accusers: ["x", "y"], reason: "majority" }, "2 of 3");
  assert.deepEqual(a.decide(new Set(["x"]), 10), { accusers: ["x"], reason: "majority" }, "the only peer");
});

test("accusers this node does not see alive do not count; with no live peer any accusation binds", () => {
  const a = new Accusations(T);
  a.note("ghost", 0);
  assert.equal(a.decide(new Set(["y"]), 0), undefined, "a node this one thinks dead cannot vote");
  assert.deepEqual(a.decide(new Set(), 0), { accusers: ["ghost"], reason: "no-peers" });
});

test("accusations expire after the window; a lasting minority one binds after the patience", () => {
  const a = new Accusations(T);
  const peers = new Set(["x", "y", "z"]);
  a.note("x", 0);
  assert.equal(a.decide(peers, T.windowMs + 1), undefined);
  assert.equal(a.decide(new Set(["x"]), T.windowMs + 1), undefined, "expired: nothing to obey");
  // x repeats its notice every second for the whole patience.
  for (let t = 10_000; t < 10_000 + T.yieldAfterMs; t += 1000) {
    a.note("x", t);
    assert.equal(a.decide(peers, t), undefined, `t=${t}`);
  }
  const t = 10_000 + T.yieldAfterMs;
  a.note("x", t);
  assert.deepEqual(a.decide(peers, t), { accusers: ["x"], reason: "persistent" });
  a.clear();
  assert.equal(a.decide(peers, t), undefined, "a new incarnation starts clean");
});

test("verdicts are refuted when the declared-dead outnumber the live peers and outlive the patience", () => {
  const r = new Refutations(T);
  r.note("y", "y1", 0);
  r.note("z", "z1", 0);
  assert.equal(r.decide(0, 0), undefined, "not for long enough yet");
  for (let t = 500; t <= T.refuteAfterMs; t += 500) {
    r.note("y", "y1", t);
    r.note("z", "z1", t);
  }
  assert.deepEqual(r.decide(0, T.refuteAfterMs), [
    { node: "y", inc: "y1" },
    { node: "z", inc: "z1" },
  ]);
  assert.deepEqual(r.decide(1, T.refuteAfterMs)?.length, 2, "2 refuters against 1 live peer");
  assert.equal(r.decide(2, T.refuteAfterMs), undefined, "not against as many live peers");
});

test("one dead node that keeps heartbeating does not refute a node that has other live peers", () => {
  const r = new Refutations(T);
  for (let t = 0; t <= 2 * T.refuteAfterMs; t += 500) r.note("p", "p1", t);
  assert.equal(r.decide(1, 2 * T.refuteAfterMs), undefined, "1 refuter, 1 live peer");
  assert.deepEqual(r.decide(0, 2 * T.refuteAfterMs), [{ node: "p", inc: "p1" }], "two nodes: it refutes");
});

test("a refuter that falls silent (it rejoined) stops counting; gaps restart its patience", () => {
  const r = new Refutations(T);
  r.note("p", "p1", 0);
  assert.equal(r.decide(0, T.windowMs + 1), undefined, "silent past the window: gone");
  r.note("p", "p1", T.windowMs + 2);
  assert.equal(r.decide(0, T.windowMs + 3), undefined, "seen again: its patience restarts");
  r.clear();
  assert.equal(r.decide(0, 100_000), undefined);
});

test("both sides are bounded", () => {
  const a = new Accusations(T);
  const r = new Refutations(T);
  for (let i = 0; i < MAX_VERDICT_ENTRIES + 50; i++) {
    a.note(`n${i}`, 0);
    r.note(`n${i}`, "i", 0);
  }
  assert.equal(a.decide(new Set(), 0)?.accusers.length, MAX_VERDICT_ENTRIES);
  assert.equal(r.decide(0, T.refuteAfterMs)?.length, MAX_VERDICT_ENTRIES);
});
