/**
 * The data loader's prefetch: its answer is kept by the loader itself, so a full mailbox that drops
 * the loader's wake-up message loses neither the leased samples nor prefetching.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Behavior } from "../../runtime/actor/index.js";
import { IGNORED_MESSAGES_METRIC } from "../../actors/ignored.js";
import { TRAINING_MESSAGES } from "../../actors/kinds.js";
import type { CoordinatorCommand, Leased } from "../../actors/coordinator/protocol.js";
import { loaderBehavior, type BatchReady } from "../../actors/loader/behavior.js";
import { testSystem } from "../helpers/actors.js";
import { waitUntil } from "../contract/runtime.js";

/** A coordinator whose lease answers the test releases one by one: lease k holds positions 10k..10k+3. */
function heldCoordinator(): {
  behavior: Behavior<CoordinatorCommand, undefined>;
  asked: () => number;
  answer: () => void;
} {
  const pending: Array<() => void> = [];
  let asked = 0;
  const behavior: Behavior<CoordinatorCommand, undefined> = {
    receive(_s, msg, ctx) {
      if (msg.type !== "coord.lease") return undefined;
      const k = asked++;
      const reply: Leased = {
        type: "loader.leased",
        term: msg.term,
        lease: { id: `L0-${k}`, epoch: 0, ranges: [[10 * k, 10 * k + 4]] },
        finished: false,
      };
      // Answered later, from outside the handler (the context keeps the ask): the coordinator stays free.
      pending.push(() => ctx.reply<Leased>(reply));
      return undefined;
    },
  };
  return { behavior, asked: () => asked, answer: () => pending.shift()?.() };
}

test("a prefetched lease whose wake-up a full mailbox drops is still handed out, and prefetching goes on", async (t) => {
  const { sys } = await testSystem(t, ...TRAINING_MESSAGES);
  const coord = heldCoordinator();
  const coordinator = sys.spawn(coord.behavior, { name: "coordinator" });
  const loader = sys.spawn(loaderBehavior({ job: "j", prefetch: 1 }, "n1", sys.metrics), {
    name: "loader",
    mailboxLimit: 2,
  });
  const next = () =>
    loader.ask<BatchReady>(
      { type: "loader.next", term: 1, n: 4, coordinator: coordinator.address },
      { timeoutMs: 10_000 },
    );
  // 1: nothing held, so the loader leases at once (lease 0) and prefetches (lease 1, held back).
  const first = next();
  await waitUntil(() => coord.asked() === 1, "lease 0 asked");
  coord.answer();
  assert.deepEqual((await first).batch, { lease: "L0-0", epoch: 0, start: 0, end: 4 });
  await waitUntil(() => coord.asked() === 2, "lease 1 prefetched");
  // 2: the loader blocks on its own lease 2 while lease 1's answer lands on a full mailbox.
  const second = next();
  await waitUntil(() => coord.asked() === 3, "lease 2 asked");
  loader.tell({ type: "loader.batch", batch: null });
  loader.tell({ type: "loader.batch", batch: null });
  coord.answer(); // lease 1: its wake-up is dropped (mailbox full)
  await waitUntil(
    () => sys.metrics.get("flock_dead_letters_total", { reason: "mailbox-full" }) >= 1,
    "the wake-up dropped",
  );
  coord.answer(); // lease 2
  assert.deepEqual((await second).batch, { lease: "L0-2", epoch: 0, start: 20, end: 24 });
  const fillers = { actor: "loader", type: "loader.batch", reason: "reply-type" };
  await waitUntil(() => sys.metrics.get(IGNORED_MESSAGES_METRIC, fillers) === 2, "the mailbox drained");
  // 3: lease 1's samples are handed out (no new lease asked for them), and the loader prefetches again.
  assert.deepEqual((await next()).batch, { lease: "L0-1", epoch: 0, start: 10, end: 14 });
  await waitUntil(() => coord.asked() === 4, "prefetching goes on");
  coord.answer();
  assert.deepEqual((await next()).batch, { lease: "L0-3", epoch: 0, start: 30, end: 34 });
  await waitUntil(() => coord.asked() === 5, "every lease was asked for once, and one more is prefetched");
});
