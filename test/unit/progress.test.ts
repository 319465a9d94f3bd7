/** The live progress display on a terminal and on a plain stream (a CI log, a pipe). */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createProgress,
  formatProgress,
  truncate,
  type ProgressUpdate,
} from "../../tools/report/progress.js";

/** A stream that records what was written, shaped like `process.stdout`. */
function fakeStream(isTTY: boolean, columns?: number) {
  const chunks: string[] = [];
  return { chunks, text: () => chunks.join(""), isTTY, columns, write: (c: string) => chunks.push(c) };
}

function snapshot(step: number, over: Partial<ProgressUpdate> = {}): ProgressUpdate {
  return { step, epoch: 1, epochs: 3, loss: 1 / step, members: 4, samplesPerSec: 3412.6, ...over };
}

test("formats a progress line with every field", () => {
  assert.equal(
    formatProgress(
      snapshot(140, { epoch: 2, loss: 0.51234, accuracy: 0.912, members: 3, status: "running" }),
    ),
    "step 140 · epoch 2/3 · loss 0.5123 · acc 91.20% · 3 members · 3,413 samples/s · running",
  );
  assert.equal(
    formatProgress(snapshot(1, { members: 1, loss: Number.NaN })),
    "step 1 · epoch 1/3 · loss NaN · 1 member · 3,413 samples/s",
  );
});

test("truncates to the terminal width, leaving the last cell free", () => {
  assert.equal(truncate("abcdef", 10), "abcdef");
  assert.equal(truncate("abcdefghijkl", 8), "abcdef…");
  assert.equal(Array.from(truncate("x".repeat(200), 40)).length, 39);
});

test("on a TTY the line is rewritten in place and events print above it", () => {
  const out = fakeStream(true, 40);
  const progress = createProgress(out);
  progress.update(snapshot(1));
  progress.update(snapshot(2));
  assert.deepEqual(out.chunks, [
    "\r\x1b[2Kstep 1 · epoch 1/3 · loss 1.0000 · 4 m…",
    "\r\x1b[2Kstep 2 · epoch 1/3 · loss 0.5000 · 4 m…",
  ]);
  assert.ok(!out.text().includes("\n"), "no newline while only progress is shown");

  progress.event("death node-c (no heartbeat for 2.0 s)");
  assert.deepEqual(out.chunks.slice(2), [
    "\r\x1b[2Kdeath node-c (no heartbeat for 2.0 s)\n",
    "\r\x1b[2Kstep 2 · epoch 1/3 · loss 0.5000 · 4 m…",
  ]);

  progress.done(["completed: accuracy 97.78 %"]);
  assert.deepEqual(out.chunks.slice(4), [
    "\r\x1b[2Kstep 2 · epoch 1/3 · loss 0.5000 · 4 m…\n",
    "completed: accuracy 97.78 %\n",
  ]);
  progress.update(snapshot(3));
  assert.equal(out.chunks.length, 6, "updates after done are ignored");
});

test("on a TTY every visible line fits the width, and control characters are neutralised", () => {
  const out = fakeStream(true, 30);
  const progress = createProgress(out);
  progress.update(snapshot(7, { status: "running\r\x1b[31m" }));
  progress.event("join\rnode-e\x07");
  for (const chunk of out.chunks) {
    const visible = chunk.replace("\r\x1b[2K", "").replace(/\n$/, "");
    assert.ok(Array.from(visible).length <= 29, `fits: ${JSON.stringify(visible)}`);
    assert.ok(
      !["\r", "\x07", "\x1b"].some((c) => visible.includes(c)),
      `no control characters: ${JSON.stringify(visible)}`,
    );
  }
  assert.ok(out.text().includes("join\nnode-e \n"));
});

test("off a TTY progress lines are plain and throttled; events are never held back", () => {
  let now = 0;
  const out = fakeStream(false);
  const progress = createProgress(out, { plainIntervalMs: 1000, now: () => now });
  progress.update(snapshot(1));
  now = 500;
  progress.update(snapshot(2));
  progress.event("join node-e");
  now = 999;
  progress.update(snapshot(3));
  now = 1000;
  progress.update(snapshot(4));
  now = 1500;
  progress.update(snapshot(5));
  progress.done(["completed"]);
  assert.deepEqual(out.text().split("\n"), [
    "step 1 · epoch 1/3 · loss 1.0000 · 4 members · 3,413 samples/s",
    "join node-e",
    "step 4 · epoch 1/3 · loss 0.2500 · 4 members · 3,413 samples/s",
    "step 5 · epoch 1/3 · loss 0.2000 · 4 members · 3,413 samples/s",
    "completed",
    "",
  ]);
  assert.ok(!out.text().includes("\r") && !out.text().includes("\x1b"), "no terminal control codes");
});

test("off a TTY done does not repeat a line already printed", () => {
  const out = fakeStream(false);
  const progress = createProgress(out, { now: () => 0 });
  progress.update(snapshot(1));
  progress.done();
  assert.equal(out.text(), "step 1 · epoch 1/3 · loss 1.0000 · 4 members · 3,413 samples/s\n");
});

test("the default interval is 2 s", () => {
  let now = 0;
  const out = fakeStream(false);
  const progress = createProgress(out, { now: () => now });
  progress.update(snapshot(1));
  now = 1999;
  progress.update(snapshot(2));
  now = 2000;
  progress.update(snapshot(3));
  assert.equal(out.chunks.length, 2);
  assert.match(out.chunks[1] ?? "", /^step 3 /);
});

test("process.stdout satisfies the stream type", () => {
  // Compile-time check: the real streams fit without casts.
  const make = (): unknown => createProgress(process.stdout);
  assert.equal(typeof make, "function");
});
