import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { z } from "zod";
import { ActorSystem, RemoteActorError, type Behavior } from "../../runtime/actor/index.js";
import { InProcBus } from "../../runtime/transport/index.js";
import { waitUntil } from "../contract/runtime.js";

// checkLocalSends (a debugging aid for tests) makes a local send meet the same schema check as a
// remote one; without it a local send skips the check. Both are pinned here, so neither can be
// lost without a failing test.

const Add = z.strictObject({ type: z.literal("acc.add"), by: z.number() });
const Get = z.strictObject({ type: z.literal("acc.get") });
const Total = z.strictObject({ type: z.literal("acc.total"), total: z.number() });
const Acc = z.discriminatedUnion("type", [Add, Get, Total]);
type Acc = z.infer<typeof Acc>;
type Total = z.infer<typeof Total>;

async function node(t: TestContext, checkLocalSends: boolean) {
  const sys = await ActorSystem.start({
    nodeId: "n1",
    transport: new InProcBus().connect(),
    ownsTransport: true,
    checkLocalSends,
  });
  t.after(() => sys.stop());
  sys.registry.register(Acc);
  const bad: string[] = [];
  sys.wire.onBadInput((b) => bad.push(b.reason));
  const seen: unknown[] = [];
  const acc: Behavior<Acc, number> = {
    init: () => 0,
    receive(total, msg, ctx) {
      seen.push(msg);
      if (msg.type === "acc.add") return total + msg.by;
      if (msg.type === "acc.get") ctx.reply<Total>({ type: "acc.total", total });
    },
  };
  // The ref is typed by what the compiler can see; a hostile or buggy body gets past it through JSON.
  const ref = sys.spawn(acc, { name: "acc" });
  return { sys, ref, bad, seen };
}

/** A body the compiler cannot check: `by` is a string, as a buggy sender's JSON would have it. */
const badAdd: Acc = JSON.parse('{"type":"acc.add","by":"2"}');

test("with checkLocalSends a local tell that fails its schema is refused as bad input and dead-lettered", async (t) => {
  const { sys, ref, bad, seen } = await node(t, true);
  ref.tell({ type: "acc.add", by: 1 });
  ref.tell(badAdd);
  const total = await ref.ask<Total>({ type: "acc.get" }, { timeoutMs: 2000 });
  assert.equal(total.total, 1);
  assert.equal(seen.length, 2, "the bad body never reached the actor");
  assert.deepEqual(bad, ["schema"]);
  assert.equal(sys.deadLetters.byReason()["schema"], 1);
});

test("with checkLocalSends a bad local ask rejects at once with bad-input, and an unknown type is refused", async (t) => {
  const { sys, ref, bad } = await node(t, true);
  await assert.rejects(
    ref.ask(badAdd, { timeoutMs: 2000 }),
    (e: unknown) => e instanceof RemoteActorError && e.code === "bad-input",
  );
  const unknown: Acc = JSON.parse('{"type":"acc.reset"}');
  ref.tell(unknown);
  await waitUntil(() => bad.length === 2, "both refusals counted");
  assert.deepEqual(bad, ["schema", "unknown-type"]);
  assert.equal(sys.deadLetters.byReason()["unknown-type"], 1);
});

test("without checkLocalSends the same bad local tell is delivered unchecked", async (t) => {
  const { ref, bad, seen } = await node(t, false);
  ref.tell(badAdd);
  const total = await ref.ask<Total>({ type: "acc.get" }, { timeoutMs: 2000 });
  assert.equal(total.total, "02", "the string was added as the actor's code does with it");
  assert.deepEqual(seen[0], { type: "acc.add", by: "2" });
  assert.deepEqual(bad, []);
});
