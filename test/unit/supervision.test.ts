import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { z } from "zod";
import {
  ActorNotFoundError,
  ActorSystem,
  RemoteActorError,
  type Behavior,
  type Message,
} from "../../runtime/actor/index.js";
import { testSystem } from "../helpers/actors.js";
import { waitUntil } from "../contract/runtime.js";

const Cmd = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("boom") }),
  z.strictObject({ type: z.literal("inc") }),
  z.strictObject({ type: z.literal("get") }),
]);
type Cmd = z.infer<typeof Cmd>;
const Value = z.strictObject({ type: z.literal("value"), value: z.number() });
type Value = z.infer<typeof Value>;
const Echo = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("x"), fail: z.boolean().optional() }),
  z.strictObject({ type: z.literal("echo") }),
]);
type Echo = z.infer<typeof Echo>;

const system = (t: TestContext) => testSystem(t, Cmd, Value, Echo);

const counter: Behavior<Cmd, number> = {
  init: () => 0,
  receive(n, msg, ctx) {
    if (msg.type === "boom") throw new Error("boom");
    if (msg.type === "inc") return n + 1;
    ctx.reply<Value>({ type: "value", value: n });
  },
};
const value = async (sys: ActorSystem, address: string) =>
  (await sys.ref<Cmd>(address).ask<Value>({ type: "get" }, { timeoutMs: 2000 })).value;

test("a failing actor restarts with fresh state and the failed ask rejects at once", async (t) => {
  const { sys, events } = await system(t);
  const ref = sys.spawn(counter, { name: "c", supervision: { backoff: { minMs: 1, maxMs: 1, factor: 1 } } });
  ref.tell({ type: "inc" });
  ref.tell({ type: "inc" });
  assert.equal(await value(sys, ref.address), 2);
  await assert.rejects(
    ref.ask({ type: "boom" }, { timeoutMs: 5000 }),
    (e: RemoteActorError) => e.code === "actor-failed",
  );
  assert.equal(await value(sys, ref.address), 0, "restart re-runs init");
  assert.equal(events.filter((e) => e.kind === "restarted").length, 1);
});

test("restarts back off exponentially", async (t) => {
  const { sys, events } = await system(t);
  const ref = sys.spawn(counter, {
    name: "c",
    supervision: { maxRestarts: 5, backoff: { minMs: 10, maxMs: 1000, factor: 2 } },
  });
  for (let i = 0; i < 3; i++) ref.tell({ type: "boom" });
  await waitUntil(() => events.filter((e) => e.kind === "restarted").length === 3, "three restarts");
  const delays = events.flatMap((e) => (e.kind === "restarted" ? [e.delayMs] : []));
  assert.deepEqual(delays, [10, 20, 40]);
});

test("past its restart intensity a child escalates and its parent restarts the subtree", async (t) => {
  const { sys, events } = await system(t);
  let parentInits = 0;
  const parent: Behavior<Message, number> = {
    init(ctx) {
      parentInits++;
      ctx.spawn(counter, {
        name: "child",
        supervision: { maxRestarts: 2, withinMs: 10_000, backoff: { minMs: 1, maxMs: 1, factor: 1 } },
      });
      return 0;
    },
    receive: () => undefined,
  };
  sys.spawn(parent, {
    name: "p",
    supervision: { maxRestarts: 5, backoff: { minMs: 1, maxMs: 1, factor: 1 } },
  });
  const child = sys.ref<Cmd>("n1/p/child");
  for (let i = 0; i < 3; i++) {
    child.tell({ type: "boom" });
    await waitUntil(
      () => events.filter((e) => e.kind === "restarted" || e.kind === "escalated").length >= i + 1,
      `failure ${i + 1} handled`,
    );
  }
  await waitUntil(() => parentInits === 2, "parent restarted");
  assert.deepEqual(
    events.filter((e) => e.kind !== "spawned" && e.kind !== "stopped").map((e) => `${e.kind}:${e.path}`),
    ["restarted:p/child", "restarted:p/child", "escalated:p/child", "restarted:p"],
  );
  await waitUntil(() => sys.has("p/child"), "child respawned by the restarted parent");
  child.tell({ type: "inc" });
  assert.equal(await value(sys, child.address), 1);
});

test("a top-level actor that escalates is stopped, and later messages become dead letters", async (t) => {
  const { sys, events } = await system(t);
  const ref = sys.spawn(counter, { name: "c", supervision: { strategy: "escalate" } });
  ref.tell({ type: "boom" });
  await waitUntil(() => events.some((e) => e.kind === "failed" && e.path === "c"), "failure recorded");
  await waitUntil(() => !sys.has("c"), "actor stopped");
  ref.tell({ type: "inc" });
  await assert.rejects(ref.ask({ type: "get" }, { timeoutMs: 1000 }), ActorNotFoundError);
  assert.equal(
    sys.deadLetters.byReason()["stopped"] ?? 0 + (sys.deadLetters.byReason()["no-such-actor"] ?? 0) >= 1,
    true,
  );
  assert.ok(sys.deadLetters.count >= 2, JSON.stringify(sys.deadLetters.recent()));
});

test("a stateless actor's own policy is honoured: resume keeps it running without re-init", async (t) => {
  const { sys, events } = await system(t);
  let inits = 0;
  const echo: Behavior<Echo, undefined> = {
    init: () => {
      inits++;
      return undefined;
    },
    receive(_s, msg, ctx) {
      if (msg.type === "x" && msg.fail) throw new Error("bad message");
      ctx.reply({ type: "echo" });
    },
  };
  const ref = sys.spawn(echo, { name: "echo", supervision: { strategy: "resume", maxRestarts: 10 } });
  for (let i = 0; i < 3; i++) ref.tell({ type: "x", fail: true });
  assert.equal((await ref.ask({ type: "x" }, { timeoutMs: 2000 })).type, "echo");
  assert.equal(events.filter((e) => e.kind === "resumed").length, 3);
  assert.equal(inits, 1);
});

test("stop strategy: the actor stops on its first failure; queued messages become dead letters", async (t) => {
  const { sys } = await system(t);
  const ref = sys.spawn(counter, { name: "c", supervision: { strategy: "stop" } });
  ref.tell({ type: "boom" });
  ref.tell({ type: "inc" });
  ref.tell({ type: "inc" });
  await waitUntil(() => !sys.has("c"), "actor stopped");
  await waitUntil(() => sys.deadLetters.count >= 2, "queued messages dead-lettered");
  assert.ok(sys.deadLetters.recent().every((d) => d.to === "n1/c"));
});
