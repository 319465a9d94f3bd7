/**
 * Nodes in one process on an in-process bus with memory stores (the embedded default): joining,
 * death detection, restart as a new incarnation, refusal of a live duplicate id, drain, rejoin after
 * being declared dead or losing the identity lease, fencing, slots and the cluster view.
 *
 * All on virtual time: heartbeats, failure detection, identity and monitor leases and the stores'
 * TTLs run on one VirtualScheduler, so a deadline is checked to the tick and nothing sleeps.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { z } from "zod";
import { ActorSystem, type Behavior, type Message } from "../../runtime/actor/index.js";
import { NodeIdInUseError, readClusterView, type Membership } from "../../runtime/cluster/index.js";
import { crashNode } from "../../runtime/daemon/faults.js";
import { identityKey, startNode, type FlockNode, type NodeOptions } from "../../runtime/daemon/index.js";
import { MemoryStores } from "../../runtime/store/index.js";
import { InProcBus, type FrameHandler, type Transport } from "../../runtime/transport/index.js";
import { virtualTime, type TestTime } from "../helpers/time.js";

const FAST = { heartbeatMs: 100, deadAfterMs: 500 } as const;

function world() {
  const time = virtualTime();
  return { time, bus: new InProcBus(), stores: new MemoryStores({ clock: time.scheduler }) };
}

/** Moves virtual time until `pending` settles (at most `limitMs` of it), and returns its outcome. */
async function during<T>(time: TestTime, pending: Promise<T>, limitMs = 10_000): Promise<T> {
  let settled = false;
  const watched = pending.finally(() => void (settled = true));
  watched.catch(() => undefined);
  await time.until("the operation settles", () => settled, limitMs);
  return watched;
}

async function node(
  t: TestContext,
  w: ReturnType<typeof world>,
  nodeId: string,
  extra: Partial<NodeOptions> = {},
): Promise<FlockNode> {
  const n = await during(
    w.time,
    startNode({
      nodeId,
      transport: w.bus.connect(),
      stores: w.stores,
      scheduler: w.time.scheduler,
      ...FAST,
      ...extra,
    }),
  );
  t.after(() => during(w.time, n.stop()));
  return n;
}

const stateOf = (observer: FlockNode, id: string): string | undefined => observer.membership.get(id)?.state;

test("nodes see each other alive; a crashed node is dead within the deadline and the epoch moves", async (t) => {
  const w = world();
  const setups: string[] = [];
  const [a, b, c] = await Promise.all(
    ["a", "b", "c"].map((id) =>
      node(t, w, id, { setup: (n) => void setups.push(`${n.nodeId}:${n.incarnation}`) }),
    ),
  );
  assert.equal(setups.length, 3);
  await w.time.until(
    "all see all alive",
    () => [a, b, c].every((o) => o!.membership.alive().length === 3),
    5000,
  );
  const epoch = a!.membership.epoch;
  const crashedAt = w.time.scheduler.now();
  await during(w.time, crashNode(c!));
  assert.equal(c!.status, "crashed");
  assert.deepEqual(await c!.done, { status: "crashed" });
  await w.time.until(
    "c dead for a and b",
    () => stateOf(a!, "c") === "dead" && stateOf(b!, "c") === "dead",
    3000,
  );
  const tookMs = w.time.scheduler.now() - crashedAt;
  assert.ok(tookMs > FAST.deadAfterMs && tookMs <= FAST.deadAfterMs + 150, `at the deadline (${tookMs} ms)`);
  assert.ok(a!.membership.epoch > epoch);
});

test("a restarted node id comes back as a new incarnation; a live duplicate is refused at once", async (t) => {
  const w = world();
  const a = await node(t, w, "a");
  const b = await node(t, w, "b");
  await w.time.until("a sees b", () => stateOf(a, "b") === "alive", 5000);
  const firstInc = b.incarnation;
  const started = w.time.scheduler.now();
  await assert.rejects(
    during(
      w.time,
      startNode({
        nodeId: "b",
        transport: w.bus.connect(),
        stores: w.stores,
        scheduler: w.time.scheduler,
        ...FAST,
      }),
    ),
    NodeIdInUseError,
  );
  const refusedMs = w.time.scheduler.now() - started;
  assert.ok(refusedMs < 2000, `refused without waiting for the identity TTL (${refusedMs} ms)`);
  await during(w.time, crashNode(b));
  const b2 = await node(t, w, "b");
  assert.notEqual(b2.incarnation, firstInc);
  await w.time.until(
    "a sees the new b",
    () => a.membership.get("b")?.inc === b2.incarnation && stateOf(a, "b") === "alive",
    5000,
  );
});

test("drain: peers see the node leave, drain hooks run, the node stops; stop after drain is a no-op", async (t) => {
  const w = world();
  const a = await node(t, w, "a");
  const b = await node(t, w, "b");
  await w.time.until("a sees b", () => stateOf(a, "b") === "alive", 5000);
  let handedBack = false;
  b.onDrain(async () => {
    assert.equal(stateOf(a, "b"), "left", "peers already know b is leaving while it hands work back");
    await w.time.scheduler.sleep(50);
    handedBack = true;
  });
  b.onDrain(async () => {
    throw new Error("a failing hook does not block the drain");
  });
  await during(w.time, b.drain());
  assert.ok(handedBack);
  assert.equal(b.status, "stopped");
  await during(w.time, b.stop());
  await w.time.until("a sees b left", () => stateOf(a, "b") === "left", 5000);
  const c = await node(t, w, "b");
  assert.ok(c.incarnation !== b.incarnation, "a drained id can start again at once");
});

test("a node that was declared dead (silent past the deadline) rejoins as a new incarnation, with setup again", async (t) => {
  const w = world();
  const a = await node(t, w, "a");
  let setups = 0;
  const b = await node(t, w, "b", { setup: () => void setups++ });
  await w.time.until("a sees b", () => stateOf(a, "b") === "alive", 5000);
  const oldInc = b.incarnation;
  const oldSystem = b.system;
  const rejoined = new Promise((resolve) => b.onRejoined(resolve));
  // As after SIGSTOP: b's heartbeats stop past the deadline, then resume.
  const mem = b.membership as Membership;
  mem.stopHeartbeats();
  await w.time.until("a declares b dead", () => stateOf(a, "b") === "dead", 3000);
  mem.startHeartbeats();
  const e = (await during(w.time, rejoined)) as { previous: string; incarnation: string; reason: string };
  assert.equal(e.previous, oldInc);
  assert.match(e.reason, /declared dead by a/);
  assert.notEqual(b.incarnation, oldInc);
  assert.ok(oldSystem.stopped, "the old incarnation's actors are stopped");
  assert.notEqual(b.system, oldSystem);
  assert.equal(setups, 2);
  await w.time.until(
    "a sees b's new incarnation alive",
    () => a.membership.get("b")?.inc === b.incarnation && stateOf(a, "b") === "alive",
    5000,
  );
  assert.equal(b.status, "running");
});

/** A transport that can stop delivering heartbeats to its node (a slow or lossy inbound link). */
function deafenable(inner: Transport): Transport & { deaf: boolean } {
  const t = {
    deaf: false,
    kind: inner.kind,
    maxPayload: inner.maxPayload,
    get closed() {
      return inner.closed;
    },
    publish: (subject: string, data: Uint8Array) => inner.publish(subject, data),
    subscribe: (subject: string, handler: FrameHandler, opts?: { queue?: string }) =>
      inner.subscribe(
        subject,
        (data, subj) => {
          if (t.deaf && subj.includes(".hb.")) return;
          handler(data, subj);
        },
        opts,
      ),
    flush: () => inner.flush(),
    onStatus: (l: Parameters<Transport["onStatus"]>[0]) => inner.onStatus(l),
    close: () => inner.close(),
    [Symbol.asyncDispose]: () => inner[Symbol.asyncDispose](),
  };
  return t;
}

test("a node that stops hearing its peers cannot re-incarnate them: its verdicts are refuted and it rejoins itself", async (t) => {
  const w = world();
  const link = deafenable(w.bus.connect());
  const a = await node(t, w, "a", { transport: link });
  const b = await node(t, w, "b");
  const c = await node(t, w, "c");
  await w.time.until("all see all", () => [a, b, c].every((n) => n.membership.alive().length === 3), 5000);
  const incs = { a: a.incarnation, b: b.incarnation, c: c.incarnation };
  const rejoins: string[] = [];
  for (const n of [a, b, c]) n.onRejoined((e) => rejoins.push(`${n.nodeId}: ${e.reason}`));
  link.deaf = true; // a hears no heartbeat; the others still hear a's
  await w.time.until(
    "a declares b and c dead",
    () => stateOf(a, "b") === "dead" && stateOf(a, "c") === "dead",
    3000,
  );
  assert.equal(stateOf(b, "a"), "alive", "b still hears a");
  link.deaf = false; // a hears b and c again: their incarnations are ended in its view
  await w.time.until("a rejoins", () => rejoins.length > 0, 5000);
  assert.deepEqual(
    [b.incarnation, c.incarnation],
    [incs.b, incs.c],
    `b and c kept their incarnations (rejoins: ${rejoins.join("; ")})`,
  );
  assert.equal(rejoins.length, 1, rejoins.join("; "));
  assert.match(rejoins[0]!, /^a: its verdicts were refuted: b, c kept heartbeating/);
  await w.time.until(
    "a's new incarnation sees b and c alive again, and they see it",
    () =>
      stateOf(a, "b") === "alive" &&
      stateOf(a, "c") === "alive" &&
      b.membership.get("a")?.inc === a.incarnation &&
      stateOf(b, "a") === "alive",
    5000,
  );
  await w.time.pass(3000);
  assert.deepEqual([b.incarnation, c.incarnation], [incs.b, incs.c], "and nothing more happens");
  assert.equal(rejoins.length, 1, rejoins.join("; "));
});

test("a node its peers agree is dead rejoins on their notices (a majority)", async (t) => {
  const w = world();
  const a = await node(t, w, "a");
  const b = await node(t, w, "b");
  const c = await node(t, w, "c");
  await w.time.until("all see all", () => [a, b, c].every((n) => n.membership.alive().length === 3), 5000);
  const inc = c.incarnation;
  const reason = new Promise<string>((resolve) => c.onRejoined((e) => resolve(e.reason)));
  const mem = c.membership as Membership;
  mem.stopHeartbeats(); // as after SIGSTOP
  await w.time.until(
    "a and b declare c dead",
    () => stateOf(a, "c") === "dead" && stateOf(b, "c") === "dead",
    3000,
  );
  mem.startHeartbeats();
  assert.match(await during(w.time, reason), /^declared dead by a, b$|^declared dead by (a|b)$/);
  assert.notEqual(c.incarnation, inc);
});

test("a node that loses its identity lease rejoins as a new incarnation", async (t) => {
  const w = world();
  const a = await node(t, w, "a", { identityTtlMs: 1500 });
  const oldInc = a.incarnation;
  const rejoined = new Promise<{ reason: string }>((resolve) => a.onRejoined(resolve));
  const kv = await w.stores.kv("leases-1500", { ttlMs: 1500 });
  await kv.delete(identityKey("a"));
  const e = await during(w.time, rejoined);
  assert.match(e.reason, /identity lease lost/);
  assert.notEqual(a.incarnation, oldInc);
  assert.equal(a.status, "running");
});

test("messages from a dead incarnation are fenced off; from the live one and from clients they pass", async (t) => {
  const w = world();
  const a = await node(t, w, "a");
  const Echo = z.strictObject({ type: z.literal("test.echo"), n: z.number() });
  const echo: Behavior<Message> = { receive: (_s, m, ctx) => ctx.reply(m) };
  a.system.registry.register(Echo);
  a.system.spawn(echo, { name: "echo" });
  // An impostor speaks for node "b" with an incarnation that a has seen replaced.
  const b = await node(t, w, "b");
  await w.time.until("a sees b", () => stateOf(a, "b") === "alive", 5000);
  const staleInc = b.incarnation;
  await during(w.time, crashNode(b));
  await w.time.until("b dead", () => stateOf(a, "b") === "dead", 3000);
  const ghost = await ActorSystem.start({
    nodeId: "b",
    incarnation: staleInc,
    transport: w.bus.connect(),
    cluster: "default",
    ownsTransport: true,
  });
  t.after(() => ghost.stop());
  ghost.registry.register(Echo);
  await assert.rejects(ghost.ref("a/echo").ask({ type: "test.echo", n: 1 } as Message, { timeoutMs: 300 }));
  await w.time.until(
    "a dead-lettered it",
    () => a.system.deadLetters.byReason()["stale-incarnation"] === 1,
    5000,
  );
  const client = await ActorSystem.start({
    nodeId: "client-1",
    transport: w.bus.connect(),
    cluster: "default",
    ownsTransport: true,
  });
  t.after(() => client.stop());
  client.registry.register(Echo);
  assert.deepEqual(
    await client.ref("a/echo").ask({ type: "test.echo", n: 2 } as Message, { timeoutMs: 1000 }),
    { type: "test.echo", n: 2 },
  );
});

test("slots: reservations show in peers' view; device and backend are announced", async (t) => {
  const w = world();
  const a = await node(t, w, "a");
  const b = await node(t, w, "b", { slots: 3, device: "cpu" });
  assert.ok(b.slots.reserve("trainer:j1", 2));
  assert.equal(b.slots.reserve("trainer:j2", 2), false);
  assert.equal(b.slots.free(), 1);
  b.backend = "wasm";
  await w.time.until(
    "a sees b's slots and backend",
    () => {
      const info = a.membership.get("b");
      return info?.freeSlots === 1 && info.slots === 3 && info.backend === "wasm" && info.device === "cpu";
    },
    5000,
  );
  b.slots.release("trainer:j1");
  assert.equal(b.slots.free(), 3);
});

test("one node writes the cluster view; when it dies another takes over and the epoch keeps growing", async (t) => {
  const w = world();
  const nodes = await Promise.all(["a", "b", "c"].map((id) => node(t, w, id)));
  const view3 = await w.time.until(
    "a view with three alive nodes",
    async () => {
      const v = await readClusterView(w.stores);
      return v && v.nodes.filter((n) => n.state === "alive").length === 3 ? v : undefined;
    },
    5000,
  );
  const monitorId = view3.monitor.slice(0, view3.monitor.lastIndexOf(":"));
  const victim = nodes.find((n) => n.nodeId === monitorId)!;
  await during(w.time, crashNode(victim));
  const after = await w.time.until(
    "another monitor reporting the dead one",
    async () => {
      const v = await readClusterView(w.stores);
      return v && v.monitor !== view3.monitor && v.nodes.find((n) => n.node === monitorId)?.state === "dead"
        ? v
        : undefined;
    },
    3000,
  );
  assert.ok(after.epoch > view3.epoch, `epoch ${after.epoch} > ${view3.epoch}`);
  assert.equal(after.cluster, "default");
});
