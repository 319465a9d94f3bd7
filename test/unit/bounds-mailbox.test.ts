import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import type { ActorRef, Behavior } from "../../runtime/actor/index.js";
import { DEFAULT_MAILBOX_LIMIT } from "../../runtime/actor/cell.js";
import { testSystem } from "../helpers/actors.js";
import { waitUntil } from "../contract/runtime.js";

const Cmd = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("add"), n: z.number() }),
  z.strictObject({ type: z.literal("get") }),
]);
type Cmd = z.infer<typeof Cmd>;
const Seen = z.strictObject({ type: z.literal("seen"), seen: z.array(z.number()) });
type Seen = z.infer<typeof Seen>;

/** An actor that blocks on its first message until `release` is called, then records the rest. */
function gated(): { behavior: Behavior<Cmd, number[]>; release: () => void; blocked: () => boolean } {
  let release = (): void => undefined;
  let blocked = false;
  const gate = new Promise<void>((r) => (release = r));
  const behavior: Behavior<Cmd, number[]> = {
    init: () => [],
    async receive(seen, msg, ctx) {
      if (seen.length === 0 && msg.type === "add") {
        blocked = true;
        await gate;
      }
      if (msg.type === "add") return [...seen, msg.n];
      ctx.reply<Seen>({ type: "seen", seen });
      return seen;
    },
  };
  return { behavior, release, blocked: () => blocked };
}

/** Asks for what the actor saw once its mailbox has drained below its bound again. */
async function seenWhenDrained(ref: ActorRef<Cmd>): Promise<number[]> {
  for (;;) {
    try {
      return (await ref.ask<Seen>({ type: "get" }, { timeoutMs: 10_000 })).seen;
    } catch (error) {
      if (!/mailbox full/.test(String(error))) throw error;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

test("a mailbox holds at most its limit; the newest past it are dead-lettered as mailbox-full", async (t) => {
  const { sys } = await testSystem(t, Cmd, Seen);
  const { behavior, release, blocked } = gated();
  const ref = sys.spawn(behavior, { name: "slow", mailboxLimit: 10 });
  ref.tell({ type: "add", n: 0 });
  await waitUntil(blocked, "the first message is being handled, blocked");
  for (let i = 1; i <= 100; i++) ref.tell({ type: "add", n: i });
  await waitUntil(
    () => sys.metrics.get("flock_dead_letters_total", { reason: "mailbox-full" }) === 90,
    "90 dropped",
  );
  // An ask past the limit fails at once rather than waiting for its timeout.
  await assert.rejects(ref.ask<Seen>({ type: "get" }, { timeoutMs: 5000 }), /mailbox full/);
  release();
  const seen = await seenWhenDrained(ref);
  assert.deepEqual(
    seen,
    Array.from({ length: 11 }, (_, i) => i),
    "the oldest ten kept, in order",
  );
});

test("the default bound is 10 000 messages", async (t) => {
  assert.equal(DEFAULT_MAILBOX_LIMIT, 10_000);
  const { sys } = await testSystem(t, Cmd, Seen);
  const { behavior, release } = gated();
  const ref = sys.spawn(behavior, { name: "slow" });
  ref.tell({ type: "add", n: 0 });
  await new Promise((r) => setTimeout(r, 20));
  for (let i = 1; i <= DEFAULT_MAILBOX_LIMIT + 5; i++) ref.tell({ type: "add", n: i });
  await waitUntil(
    () => sys.metrics.get("flock_dead_letters_total", { reason: "mailbox-full" }) === 5,
    "5 dropped",
  );
  release();
  const seen = await seenWhenDrained(ref);
  assert.equal(seen.length, DEFAULT_MAILBOX_LIMIT + 1);
});
