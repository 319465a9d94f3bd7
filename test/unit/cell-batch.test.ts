import assert from "node:assert/strict";
import { test } from "node:test";
import type { TestContext } from "node:test";
import { z } from "zod";
import { ActorSystem, type Behavior } from "../../runtime/actor/index.js";
import { testSystem } from "../helpers/actors.js";
import { waitUntil } from "../contract/runtime.js";

// A cell reads several queued messages in one nact turn; these pin down that it changes nothing
// an actor can observe: order, state across a resumed failure, restart, stop.

const Cmd = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("add"), n: z.number() }),
  z.strictObject({ type: z.literal("boom") }),
  z.strictObject({ type: z.literal("get") }),
  z.strictObject({ type: z.literal("halt") }),
]);
type Cmd = z.infer<typeof Cmd>;
const Seen = z.strictObject({ type: z.literal("seen"), seen: z.array(z.number()) });
type Seen = z.infer<typeof Seen>;

const system = (t: TestContext) => testSystem(t, Cmd, Seen);

const log: Behavior<Cmd, number[]> = {
  init: () => [],
  receive(seen, msg, ctx) {
    if (msg.type === "boom") throw new Error("boom");
    if (msg.type === "add") return [...seen, msg.n];
    if (msg.type === "halt") return ctx.stop();
    ctx.reply<Seen>({ type: "seen", seen });
  },
};
const seen = async (sys: ActorSystem, address: string) =>
  (await sys.ref<Cmd>(address).ask<Seen>({ type: "get" }, { timeoutMs: 5000 })).seen;

test("many queued messages are read one at a time, in order, across turns", async (t) => {
  const { sys } = await system(t);
  const ref = sys.spawn(log, { name: "log" });
  for (let i = 0; i < 1000; i++) ref.tell({ type: "add", n: i });
  assert.deepEqual(
    await seen(sys, ref.address),
    Array.from({ length: 1000 }, (_, i) => i),
  );
});

test("resume keeps the state left by the messages read before the failure in the same turn", async (t) => {
  const { sys, events } = await system(t);
  const ref = sys.spawn(log, { name: "log", supervision: { strategy: "resume", maxRestarts: 10 } });
  for (let i = 0; i < 5; i++) ref.tell({ type: "add", n: i });
  ref.tell({ type: "boom" });
  for (let i = 5; i < 10; i++) ref.tell({ type: "add", n: i });
  assert.deepEqual(await seen(sys, ref.address), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(events.filter((e) => e.kind === "resumed").length, 1);
});

test("restart drops the state and goes on with the messages queued behind the failure", async (t) => {
  const { sys } = await system(t);
  const ref = sys.spawn(log, { name: "log", supervision: { backoff: { minMs: 1, maxMs: 1, factor: 1 } } });
  for (let i = 0; i < 5; i++) ref.tell({ type: "add", n: i });
  ref.tell({ type: "boom" });
  for (let i = 5; i < 10; i++) ref.tell({ type: "add", n: i });
  assert.deepEqual(await seen(sys, ref.address), [5, 6, 7, 8, 9]);
});

test("an actor that stops itself leaves the rest of its queue to dead letters", async (t) => {
  const { sys } = await system(t);
  const ref = sys.spawn(log, { name: "log" });
  ref.tell({ type: "add", n: 1 });
  ref.tell({ type: "halt" });
  for (let i = 0; i < 3; i++) ref.tell({ type: "add", n: i });
  await waitUntil(() => !sys.has("log"), "actor stopped");
  await waitUntil(() => sys.deadLetters.count >= 3, "queued messages dead-lettered");
});
