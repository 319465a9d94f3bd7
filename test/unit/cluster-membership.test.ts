/** The membership state machine on an injected clock: no network, no timers. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Envelope } from "../../messages/index.js";
import type { Heartbeat } from "../../runtime/cluster/heartbeat.js";
import { decodeFrame, encodeFrame } from "../../runtime/cluster/heartbeat.js";
import { MembershipTracker, isHolderDead } from "../../runtime/cluster/tracker.js";
import type { MembershipEvent } from "../../runtime/cluster/types.js";
import { heartbeat } from "../helpers/heartbeats.js";

function hb(node: string, inc: string, over: Partial<Heartbeat> = {}): Heartbeat {
  return heartbeat(node, inc, { slots: 2, load: 0.5, lagMs: 1, ...over });
}

function env(from: string, inc?: string): Envelope {
  const e: Envelope = { v: 1, type: "x", from, to: "me/a", id: "1", body: { type: "x" } };
  if (inc !== undefined) e.inc = inc;
  return e;
}

/** A tracker on a fake clock, with its events recorded as `kind:node`. */
function setup(opts: ConstructorParameters<typeof MembershipTracker>[0] = {}) {
  let t = 0;
  const tracker = new MembershipTracker({
    now: () => t,
    wallNow: () => 1_000_000 + t,
    self: { node: "me", inc: "m1" },
    ...opts,
  });
  const events: MembershipEvent[] = [];
  tracker.subscribe((e) => events.push(e));
  /** Advances the clock in ticks of `step` ms. */
  const advance = (ms: number, step = 100): void => {
    for (let done = 0; done < ms; done += step) {
      t += Math.min(step, ms - done);
      tracker.tick();
    }
  };
  const jump = (ms: number): void => {
    t += ms;
    tracker.tick();
  };
  const kinds = (): string[] => events.map((e) => `${e.kind}:${e.node.node}`);
  return { tracker, events, advance, jump, kinds };
}

test("a node joins, turns suspect after about two missed beats, dead after the deadline; each change bumps the epoch", () => {
  const { tracker, events, advance, kinds } = setup();
  tracker.observe(hb("a", "a1"));
  assert.deepEqual(kinds(), ["joined:a"]);
  assert.equal(tracker.get("a")?.state, "alive");
  advance(1200);
  assert.equal(tracker.get("a")?.state, "alive", "two beats may be late");
  advance(100);
  assert.equal(tracker.get("a")?.state, "suspect");
  advance(600);
  assert.equal(tracker.get("a")?.state, "suspect");
  advance(200);
  assert.equal(tracker.get("a")?.state, "dead");
  assert.deepEqual(kinds(), ["joined:a", "suspect:a", "dead:a"]);
  assert.deepEqual(
    events.map((e) => e.epoch),
    [1, 2, 3],
  );
  assert.equal(tracker.epoch, 3);
  assert.deepEqual(tracker.alive(), []);
});

test("a suspect that beats again is alive; heartbeats in time keep it alive forever", () => {
  const { tracker, advance, kinds } = setup();
  tracker.observe(hb("a", "a1"));
  advance(1400);
  tracker.observe(hb("a", "a1", { seq: 1, freeSlots: 0 }));
  assert.equal(tracker.get("a")?.state, "alive");
  assert.equal(tracker.get("a")?.freeSlots, 0, "fields follow the latest heartbeat");
  for (let i = 0; i < 50; i++) {
    advance(500);
    tracker.observe(hb("a", "a1", { seq: i + 2 }));
  }
  assert.deepEqual(kinds(), ["joined:a", "suspect:a", "alive:a"]);
});

test("the observer's own stall is not counted against others", () => {
  const { tracker, jump, advance } = setup();
  tracker.observe(hb("a", "a1"));
  advance(500);
  jump(10_000); // this process was stopped for 10 s: its timer fires once, very late
  assert.equal(tracker.get("a")?.state, "alive", "a 10 s stall credits at most one heartbeat interval");
  tracker.observe(hb("a", "a1", { seq: 1 })); // the heartbeats buffered meanwhile arrive
  assert.equal(tracker.get("a")?.state, "alive");
  // Real silence after the stall is still detected.
  advance(2100);
  assert.equal(tracker.get("a")?.state, "dead");
});

test("while the connection is down nobody is declared dead; after it is back, a full deadline applies", () => {
  const { tracker, advance } = setup();
  tracker.observe(hb("a", "a1"));
  tracker.observe(hb("b", "b1"));
  advance(1000);
  tracker.pause();
  advance(8000);
  assert.equal(tracker.get("a")?.state, "alive");
  tracker.resume();
  advance(1900);
  tracker.observe(hb("a", "a1", { seq: 1 }));
  assert.equal(tracker.get("a")?.state, "alive");
  assert.equal(tracker.get("b")?.state, "suspect", "b has been silent 1.9 s since the reconnect");
  advance(200);
  assert.equal(tracker.get("b")?.state, "dead", "b never came back");
  assert.equal(tracker.get("a")?.state, "alive");
});

test("a new incarnation of a known node ends the old one: dead, then joined; the old one is fenced", () => {
  const { tracker, kinds } = setup();
  tracker.observe(hb("a", "a1"));
  assert.equal(tracker.fence(env("a/x", "a1")), undefined);
  tracker.observe(hb("a", "a2"));
  assert.deepEqual(kinds(), ["joined:a", "dead:a", "joined:a"]);
  assert.equal(tracker.get("a")?.inc, "a2");
  assert.equal(tracker.fence(env("a/x", "a1")), "stale-incarnation");
  assert.equal(tracker.fence(env("a/$ask", "a2")), undefined);
  assert.equal(
    tracker.observe(hb("a", "a1", { seq: 9 })),
    "stale",
    "a late heartbeat of the old incarnation changes nothing",
  );
  assert.equal(tracker.get("a")?.inc, "a2");
  assert.equal(tracker.epoch, 3);
});

test("a dead incarnation stays dead and fenced; its heartbeats are stale", () => {
  const { tracker, advance, kinds } = setup();
  tracker.observe(hb("a", "a1"));
  advance(2100);
  assert.equal(tracker.fence(env("a/x", "a1")), "stale-incarnation");
  assert.equal(tracker.observe(hb("a", "a1", { seq: 5 })), "stale");
  assert.equal(tracker.get("a")?.state, "dead");
  assert.deepEqual(kinds(), ["joined:a", "suspect:a", "dead:a"]);
});

test("unknown senders and envelopes without an incarnation pass the fence", () => {
  const { tracker } = setup();
  assert.equal(tracker.fence(env("client-1/$ask", "c1")), undefined);
  assert.equal(tracker.fence(env("a/x")), undefined);
  tracker.observe(hb("a", "a1"));
  assert.equal(tracker.fence(env("a/x", "a-future")), undefined, "an incarnation not seen yet is not fenced");
});

test("leaving: left at once; messages pass while it drains, fenced after its goodbye", () => {
  const { tracker, advance, kinds } = setup();
  tracker.observe(hb("a", "a1"));
  tracker.observe(hb("a", "a1", { seq: 1, state: "leaving" }));
  assert.equal(tracker.get("a")?.state, "left");
  assert.deepEqual(tracker.alive(), []);
  assert.equal(tracker.fence(env("a/x", "a1")), undefined, "hand-back messages while draining pass");
  advance(1000);
  tracker.observe(hb("a", "a1", { seq: 2, state: "left" }));
  assert.equal(tracker.fence(env("a/x", "a1")), "stale-incarnation");
  advance(5000);
  assert.equal(tracker.get("a")?.state, "left", "left is final: never dead");
  assert.deepEqual(kinds(), ["joined:a", "left:a"]);
});

test("a leaving node that goes silent without its goodbye is fenced after the deadline", () => {
  const { tracker, advance } = setup();
  tracker.observe(hb("a", "a1", { state: "leaving" }));
  assert.equal(tracker.get("a")?.state, "left");
  advance(1500);
  assert.equal(tracker.fence(env("a/x", "a1")), undefined);
  advance(700);
  assert.equal(tracker.fence(env("a/x", "a1")), "stale-incarnation");
});

test("this node never declares itself suspect or dead; a rejoin ends its previous incarnation", () => {
  const { tracker, advance, kinds } = setup();
  tracker.observe(hb("me", "m1"));
  advance(10_000);
  assert.equal(tracker.get("me")?.state, "alive");
  assert.equal(
    tracker.observe(hb("me", "m-other")),
    "foreign-self",
    "another process with my id does not replace me",
  );
  assert.equal(tracker.get("me")?.inc, "m1");
  tracker.setSelf("me", "m2");
  tracker.observe(hb("me", "m2"));
  assert.equal(tracker.fence(env("me/x", "m1")), "stale-incarnation");
  assert.deepEqual(kinds(), ["joined:me", "dead:me", "joined:me"]);
});

test("dead and left nodes are forgotten after a while, but stay fenced", () => {
  const { tracker, advance } = setup({ forgetAfterMs: 3000 });
  tracker.observe(hb("a", "a1"));
  advance(2100);
  assert.equal(tracker.get("a")?.state, "dead");
  advance(3100);
  assert.equal(tracker.get("a"), undefined);
  assert.equal(tracker.fence(env("a/x", "a1")), "stale-incarnation");
});

test("isHolderDead reads <node>:<incarnation> holders against the view", () => {
  const { tracker, advance } = setup();
  tracker.observe(hb("a", "a1"));
  tracker.observe(hb("b:gpu", "b1"));
  assert.equal(isHolderDead(tracker, "a:a1"), false);
  assert.equal(isHolderDead(tracker, "b:gpu:b1"), false, "node ids may contain colons");
  assert.equal(isHolderDead(tracker, "zz:z1"), false, "unknown: not known dead");
  tracker.observe(hb("a", "a2"));
  assert.equal(isHolderDead(tracker, "a:a1"), true);
  advance(2100);
  assert.equal(isHolderDead(tracker, "b:gpu:b1"), true);
});

test("timing: suspect stays below dead; bad settings are refused", () => {
  assert.throws(() => new MembershipTracker({ heartbeatMs: 500, deadAfterMs: 400 }), RangeError);
  const t = new MembershipTracker({ heartbeatMs: 500, deadAfterMs: 1000 });
  assert.ok(t.timing.suspectAfterMs < 1000);
});

test("heartbeat frames round-trip and bad ones are refused with a reason", () => {
  const frame = hb("a", "a1", { backend: "wasm", actors: { trainer: 2 } });
  assert.deepEqual(decodeFrame(encodeFrame(frame)), { frame });
  assert.ok("error" in decodeFrame(new TextEncoder().encode("{nope")));
  assert.ok("error" in decodeFrame(encodeFrame({ ...frame, extra: 1 } as unknown as Heartbeat)));
  assert.ok("error" in decodeFrame(encodeFrame({ ...frame, state: "zombie" } as unknown as Heartbeat)));
});
