/** retry(): exponential backoff and its deadline, on virtual time. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { VirtualScheduler } from "../../runtime/clock.js";
import { retry } from "../../runtime/retry.js";

test("backs off 100, 200, 400 ms on the injected clock, then returns the first success", async () => {
  const scheduler = new VirtualScheduler(0);
  const attemptsAt: number[] = [];
  const result = retry(
    async () => {
      attemptsAt.push(scheduler.now());
      if (attemptsAt.length < 4) throw new Error("not yet");
      return "done";
    },
    { scheduler },
  );
  await new Promise((resolve) => setImmediate(resolve)); // the first failure schedules its pause at 0
  await scheduler.runFor(1000);
  assert.equal(await result, "done");
  assert.deepEqual(attemptsAt, [0, 100, 300, 700]);
});

test("gives up with the last error once the next pause would pass forMs", async () => {
  const scheduler = new VirtualScheduler(0);
  let n = 0;
  const result = retry(
    async () => {
      throw new Error(`failure ${++n}`);
    },
    { scheduler, forMs: 1000, maxDelayMs: 300 },
  );
  const settled = result.catch((e: unknown) => e);
  await new Promise((resolve) => setImmediate(resolve));
  await scheduler.runFor(2000);
  const error = await settled;
  assert.ok(error instanceof Error);
  // Attempts at 0, 100, 300, 600, 900; the next pause (300) would end past the 1000 ms deadline.
  assert.equal(error.message, "failure 5");
});
