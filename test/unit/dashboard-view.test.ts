/**
 * The dashboard's pure fold: nodes from heartbeats and their timing, jobs from records and events,
 * membership marks, bounds (nodes, jobs, finished jobs, points per curve) and the deltas the server
 * pushes. No network, no timers: each event carries its time.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { JobEvent, TrainResult } from "../../messages/index.js";
import type { Heartbeat } from "../../runtime/cluster/heartbeat.js";
import type { JobRecord } from "../../runtime/cluster/jobs.js";
import { compactPoints } from "../../tools/dashboard/jobs.js";
import {
  applyDelta,
  DEFAULT_LIMITS,
  diff,
  initialState,
  reduce,
  type DashEvent,
  type DashLimits,
  type DashState,
} from "../../tools/dashboard/index.js";

function hb(node: string, over: Partial<Heartbeat> = {}): Heartbeat {
  return {
    t: "hb",
    v: 1,
    node,
    inc: `${node}-1`,
    seq: 0,
    state: "alive",
    slots: 2,
    freeSlots: 1,
    device: "cpu",
    backend: "wasm",
    load: 0.5,
    lagMs: 3,
    actors: {},
    rssBytes: 100 << 20,
    badInput: 2,
    deadLetters: 1,
    sentAt: 0,
    ...over,
  };
}

function step(job: string, n: number, over: Partial<Extract<JobEvent, { type: "job.step" }>> = {}): JobEvent {
  return {
    type: "job.step",
    job,
    step: n,
    epoch: 0,
    epochs: 2,
    loss: 2 - n / 100,
    members: 2,
    samples: 64,
    samplesPerSec: 500,
    at: 0,
    t: n / 10,
    ...over,
  };
}

function record(id: string, over: Partial<JobRecord> = {}): JobRecord {
  return { id, state: "stepping", step: 0, epoch: 0, members: ["a", "b"], updatedAt: 0, ...over };
}

function fold(events: DashEvent[], limits: DashLimits = DEFAULT_LIMITS, s = initialState("c")): DashState {
  return events.reduce((acc, e) => reduce(acc, e, limits), s);
}

test("a node is alive while heard, suspect then dead when its heartbeats stop, draining when it says so", () => {
  let s = fold([
    { type: "heartbeat", hb: hb("a"), at: 1000 },
    { type: "heartbeat", hb: hb("b", { state: "leaving" }), at: 1000 },
  ]);
  const a = s.nodes.find((n) => n.id === "a");
  assert.deepEqual(
    [a?.state, a?.backend, a?.slots, a?.badInput, a?.deadLetters, a?.rssBytes],
    ["alive", "wasm", 2, 2, 1, 100 << 20],
  );
  assert.equal(s.nodes.find((n) => n.id === "b")?.state, "draining");
  s = fold([{ type: "tick", at: 2600 }], DEFAULT_LIMITS, s);
  assert.equal(s.nodes.find((n) => n.id === "a")?.state, "suspect");
  assert.equal(s.nodes.find((n) => n.id === "a")?.heartbeatAgeMs, 1600);
  assert.equal(s.nodes.find((n) => n.id === "b")?.state, "draining", "a draining node is not suspected");
  s = fold([{ type: "tick", at: 3100 }], DEFAULT_LIMITS, s);
  assert.deepEqual(
    s.nodes.map((n) => n.state),
    ["dead", "dead"],
  );
  // A dead incarnation stays dead; the node's next incarnation is alive again.
  s = fold([{ type: "heartbeat", hb: hb("a", { seq: 9 }), at: 3200 }], DEFAULT_LIMITS, s);
  assert.equal(s.nodes.find((n) => n.id === "a")?.state, "dead");
  s = fold([{ type: "heartbeat", hb: hb("a", { inc: "a-2" }), at: 3300 }], DEFAULT_LIMITS, s);
  assert.deepEqual(
    [s.nodes.find((n) => n.id === "a")?.state, s.nodes.find((n) => n.id === "a")?.inc],
    ["alive", "a-2"],
  );
});

test("a member's death seen from heartbeats marks the running job's curve at its current step", () => {
  let s = fold([
    { type: "heartbeat", hb: hb("a"), at: 0 },
    { type: "heartbeat", hb: hb("b"), at: 0 },
    { type: "jobs", records: [record("j1")], at: 0 },
    { type: "job-event", event: step("j1", 7), at: 100 },
    { type: "heartbeat", hb: hb("a"), at: 2000 },
    { type: "tick", at: 2500 },
  ]);
  const j = s.jobs[0]!;
  assert.equal(s.nodes.find((n) => n.id === "b")?.state, "dead");
  assert.deepEqual(j.marks, [{ step: 7, kind: "death", node: "b", source: "cluster" }]);
  // The coordinator's own death event replaces the guess and brings the recovery time.
  const death: JobEvent = {
    type: "job.membership",
    job: "j1",
    step: 8,
    t: 1,
    at: 0,
    event: { kind: "death", node: "b", recoverySeconds: 1.7 },
  };
  s = fold([{ type: "job-event", event: death, at: 2600 }], DEFAULT_LIMITS, s);
  assert.deepEqual(s.jobs[0]?.marks, [
    { step: 8, kind: "death", node: "b", source: "job", recoverySeconds: 1.7 },
  ]);
  assert.deepEqual(s.jobs[0]?.recoverySeconds, [1.7]);
});

test("steps advance the curve once each: lost events are filled from `earlier`, replays are not drawn twice", () => {
  const s = fold([
    { type: "job-event", event: step("j", 1), at: 1 },
    {
      type: "job-event",
      event: step("j", 4, {
        earlier: [2, 3].map((n) => ({ step: n, epoch: 0, samples: 64, loss: 1, members: 2, at: 0, t: 0 })),
      }),
      at: 2,
    },
    { type: "job-event", event: step("j", 4, { replay: true }), at: 3 },
    { type: "job-event", event: step("j", 5, { loss: Number.NaN }), at: 4 },
  ]);
  const j = s.jobs[0]!;
  assert.deepEqual(
    j.loss.map((p) => p.step),
    [1, 2, 3, 4, 5],
  );
  assert.equal(j.loss.at(-1)?.loss, null, "a non-finite loss is kept as a gap, not as NaN in JSON");
  assert.deepEqual([j.step, j.epochs, j.memberCount, j.samplesPerSec], [5, 2, 2, 500]);
});

test("a curve stays within maxPoints: the older half is merged pairwise, recent steps are kept exactly", () => {
  const limits = { ...DEFAULT_LIMITS, maxPoints: 10 };
  const s = fold(
    Array.from({ length: 100 }, (_, i) => ({ type: "job-event", event: step("j", i + 1), at: i }) as const),
    limits,
  );
  const loss = s.jobs[0]!.loss;
  assert.ok(loss.length <= 10, `${loss.length} points`);
  assert.equal(loss.at(-1)?.step, 100);
  assert.ok(
    loss.every((p, i) => i === 0 || p.step > loss[i - 1]!.step),
    "steps stay increasing",
  );
  assert.deepEqual(
    compactPoints(
      [
        { step: 1, loss: 1 },
        { step: 2, loss: 3 },
        { step: 3, loss: null },
        { step: 4, loss: 5 },
        { step: 5, loss: 6 },
      ],
      4,
    ),
    [
      { step: 2, loss: 2 },
      { step: 3, loss: null },
      { step: 4, loss: 5 },
      { step: 5, loss: 6 },
    ],
  );
});

test("a job's state comes from its record; an event alone cannot end it on the page", () => {
  const result = {
    status: "completed",
    steps: 10,
    epochs: 1,
    accuracy: 0.9,
    loss: 0.3,
  } as Partial<TrainResult>;
  const finished = {
    type: "job.finished",
    job: "j",
    result: { ...result, backend: "cpu", wallSeconds: 4, replicasConsistent: true },
  } as Extract<JobEvent, { type: "job.finished" }>;
  let s = fold([
    { type: "jobs", records: [record("j")], at: 0 },
    { type: "job-event", event: finished, at: 1 },
  ]);
  assert.equal(s.jobs[0]?.endedAt, null);
  assert.equal(s.jobs[0]?.result?.accuracy, 0.9);
  s = fold(
    [{ type: "jobs", records: [record("j", { state: "finished", step: 10 })], at: 5 }],
    DEFAULT_LIMITS,
    s,
  );
  assert.deepEqual([s.jobs[0]?.state, s.jobs[0]?.endedAt, s.jobs[0]?.step], ["finished", 5, 10]);
  s = fold([{ type: "report", job: "j", path: "/reports/j/report.html", at: 6 }], DEFAULT_LIMITS, s);
  assert.equal(s.jobs[0]?.report, "/reports/j/report.html");
});

test("an ended job the page never heard finish takes its result from the durable record, once", () => {
  const stored = {
    status: "completed",
    steps: 20,
    epochs: 2,
    accuracy: 0.8,
    loss: 0.5,
    backend: "wasm",
    wallSeconds: 9,
    replicasConsistent: true,
  } as Extract<JobEvent, { type: "job.finished" }>["result"];
  const running = fold([
    { type: "jobs", records: [record("j")], at: 0 },
    { type: "stored-result", job: "j", result: stored, at: 1 },
  ]);
  assert.equal(running.jobs[0]?.result, null, "a running job takes no stored result");
  let s = fold(
    [{ type: "jobs", records: [record("j", { state: "finished", step: 20 })], at: 5 }],
    DEFAULT_LIMITS,
    running,
  );
  s = fold([{ type: "stored-result", job: "j", result: stored, at: 6 }], DEFAULT_LIMITS, s);
  assert.deepEqual([s.jobs[0]?.result?.accuracy, s.jobs[0]?.result?.steps], [0.8, 20]);
  const again = fold(
    [{ type: "stored-result", job: "j", result: { ...stored, accuracy: 0.1 }, at: 7 }],
    DEFAULT_LIMITS,
    s,
  );
  assert.equal(again, s, "a result already shown is not replaced (nothing pushed)");
  const unknown = fold([{ type: "stored-result", job: "nope", result: stored, at: 8 }], DEFAULT_LIMITS, s);
  assert.equal(unknown, s, "a job the view does not hold is not added");
});

test("bounds: nodes, jobs and finished jobs are capped, the oldest finished going first", () => {
  const limits = { ...DEFAULT_LIMITS, maxNodes: 3, maxJobs: 4, maxFinishedJobs: 2 };
  const s = fold(
    [
      ...["a", "b", "c", "d", "e"].map((n, i) => ({ type: "heartbeat", hb: hb(n), at: i }) as const),
      {
        type: "jobs",
        records: [1, 2, 3].map((i) => record(`done${i}`, { state: "finished", updatedAt: i })),
        at: 10,
      },
      { type: "jobs", records: [record("done1", { state: "finished" }), record("r1"), record("r2")], at: 20 },
      { type: "job-event", event: step("r3", 1), at: 30 },
    ],
    limits,
  );
  assert.deepEqual(
    s.nodes.map((n) => n.id),
    ["a", "b", "c"],
  );
  assert.ok(s.jobs.length <= 4, `${s.jobs.length} jobs`);
  assert.ok(s.jobs.filter((j) => j.endedAt !== null).length <= 2);
  assert.ok(
    ["r1", "r2", "r3"].every((id) => s.jobs.some((j) => j.id === id)),
    s.jobs.map((j) => j.id).join(),
  );
});

test("a flood of events for made-up job ids cannot push a recorded job out of the view", () => {
  const limits = { ...DEFAULT_LIMITS, maxJobs: 3 };
  const s = fold(
    [
      { type: "jobs", records: [record("real")], at: 0 },
      ...Array.from(
        { length: 20 },
        (_, i) => ({ type: "job-event", event: step(`fake${i}`, 1), at: 10 + i }) as const,
      ),
    ],
    limits,
  );
  assert.equal(s.jobs.length, 3);
  assert.ok(
    s.jobs.some((j) => j.id === "real" && j.recorded),
    s.jobs.map((j) => j.id).join(),
  );
});

test("nothing changed, nothing pushed; a delta carries only what changed and applies to its version only", () => {
  const s1 = fold([
    { type: "heartbeat", hb: hb("a"), at: 0 },
    { type: "heartbeat", hb: hb("b"), at: 0 },
    { type: "job-event", event: step("j", 1), at: 0 },
  ]);
  assert.equal(reduce(s1, { type: "tick", at: 0 }), s1, "a tick that changes nothing returns the same state");
  const s2 = fold(
    [
      { type: "heartbeat", hb: hb("b", { lagMs: 9 }), at: 100 },
      { type: "job-event", event: step("k", 1), at: 100 },
    ],
    DEFAULT_LIMITS,
    s1,
  );
  const d = diff(s1, s2);
  assert.deepEqual(
    d.nodes.map((n) => n.id),
    ["b"],
  );
  assert.deepEqual(
    d.jobs.map((j) => j.id),
    ["k"],
  );
  assert.deepEqual(applyDelta(s1, d), { ...s2 });
  assert.equal(applyDelta(s2, d), undefined);
  // Through JSON, as the page receives it.
  assert.deepEqual(
    applyDelta(JSON.parse(JSON.stringify(s1)) as DashState, JSON.parse(JSON.stringify(d))),
    s2,
  );
});
