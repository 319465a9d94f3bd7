/**
 * The dashboard's inputs over the in-process bus (no network): heartbeats and job events reach the
 * fold only when they come from who their subject names and pass their schemas; job records come
 * from the jobs bucket. The hub pushes one delta per push period to each follower, and the deltas
 * rebuild the hub's state exactly.
 */
import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { test } from "node:test";
import { createCodec, type Envelope, type JobEvent } from "../../messages/index.js";
import { topicSubject } from "../../runtime/actor/subjects.js";
import { VirtualScheduler } from "../../runtime/clock.js";
import { encodeFrame, heartbeatSubject, type Heartbeat } from "../../runtime/cluster/heartbeat.js";
import { openJobsBucket, putJobRecord } from "../../runtime/cluster/jobs.js";
import { silentLogger } from "../../runtime/log.js";
import { MemoryStores } from "../../runtime/store/index.js";
import { InProcBus } from "../../runtime/transport/index.js";
import {
  applyDelta,
  DashboardHub,
  type DashDelta,
  type DashEvent,
  type DashState,
} from "../../tools/dashboard/index.js";
import { ClusterSource } from "../../tools/dashboard/source.js";

const C = "t";

function hb(node: string): Heartbeat {
  return {
    t: "hb",
    v: 1,
    node,
    inc: "i1",
    seq: 1,
    state: "alive",
    slots: 1,
    freeSlots: 1,
    device: "cpu",
    load: 0,
    lagMs: 1,
    actors: {},
    sentAt: 0,
  };
}

function envelope(from: string, event: JobEvent): Envelope {
  return { v: 1, type: event.type, from, to: "*", id: "m1", body: event };
}

const step = (job: string): JobEvent => ({
  type: "job.step",
  job,
  step: 1,
  epoch: 0,
  epochs: 1,
  loss: 1,
  members: 1,
  samples: 8,
  samplesPerSec: 10,
  at: 0,
  t: 0,
});

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

test("forged, malformed and mismatched inputs are refused; the rest reach the fold", async () => {
  const bus = new InProcBus();
  const transport = bus.connect();
  const stores = new MemoryStores({ cluster: C });
  const events: DashEvent[] = [];
  const clock = new VirtualScheduler();
  const source = new ClusterSource({
    transport,
    stores,
    cluster: C,
    onEvent: (e) => events.push(e),
    state: () => ({
      cluster: C,
      epoch: 0,
      monitor: null,
      nodes: [],
      jobs: [],
      refused: 0,
      version: 0,
      now: 0,
    }),
    scheduler: clock,
    log: silentLogger(),
  });
  source.start();
  try {
    const codec = createCodec();
    const peer = bus.connect();
    peer.publish(heartbeatSubject(C, "a"), encodeFrame(hb("a")));
    peer.publish(heartbeatSubject(C, "mallory"), encodeFrame(hb("a"))); // speaks for a under its own subject
    peer.publish(heartbeatSubject(C, "a"), new TextEncoder().encode("{not json"));
    peer.publish(
      topicSubject(C, "job.j1.events", "a"),
      codec.encode(envelope("a/job-j1.coordinator", step("j1"))),
    );
    // From b under a's subject; for job j2 on j1's topic; a body that is not a job event.
    peer.publish(topicSubject(C, "job.j1.events", "a"), codec.encode(envelope("b/x", step("j1"))));
    peer.publish(topicSubject(C, "job.j1.events", "a"), codec.encode(envelope("a/x", step("j2"))));
    peer.publish(
      topicSubject(C, "job.j1.events", "a"),
      codec.encode({ ...envelope("a/x", step("j1")), body: { type: "job.step", job: "j1" } }),
    );
    await putJobRecord(await openJobsBucket(stores), {
      id: "j1",
      state: "stepping",
      step: 3,
      epoch: 1,
      members: ["a"],
      updatedAt: 0,
    });
    await settle();
    clock.advance(1000);
    await settle();
    const kinds = events.map((e) => e.type);
    assert.equal(kinds.filter((k) => k === "heartbeat").length, 1, kinds.join());
    assert.equal(kinds.filter((k) => k === "job-event").length, 1, kinds.join());
    assert.equal(kinds.filter((k) => k === "refused").length, 5, kinds.join());
    const jobs = events.find((e) => e.type === "jobs" && e.records.length > 0);
    assert.ok(jobs && jobs.type === "jobs" && jobs.records[0]?.id === "j1", JSON.stringify(events));
    assert.ok(kinds.includes("tick"));
  } finally {
    source.stop();
    await transport.close();
  }
});

test("the hub pushes at most one delta per period, and the deltas rebuild its state", () => {
  const clock = new VirtualScheduler();
  const hub = new DashboardHub({ cluster: C, pushMs: 250, scheduler: clock });
  let page: DashState | undefined;
  const deltas: DashDelta[] = [];
  hub.follow({
    snapshot: (s) => (page = JSON.parse(JSON.stringify(s)) as DashState),
    delta: (d) => deltas.push(JSON.parse(JSON.stringify(d)) as DashDelta),
  });
  for (let i = 0; i < 10; i++) hub.dispatch({ type: "heartbeat", hb: { ...hb(`n${i % 3}`), seq: i }, at: i });
  assert.equal(deltas.length, 0, "nothing before the period ends");
  clock.advance(250);
  assert.equal(deltas.length, 1);
  hub.dispatch({ type: "job-event", event: step("j"), at: 300 });
  clock.advance(250);
  clock.advance(250);
  assert.equal(deltas.length, 2, "no delta without a change");
  for (const d of deltas) page = page && applyDelta(page, d);
  assert.deepEqual(page, hub.state);
  hub.close();
});
