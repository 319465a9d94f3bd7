/**
 * A client following a job (actors/job/follow.ts, actors/follow.ts): when it reads the job's
 * durable state record, what ends the follow, and reading that record from a store. Virtual time
 * and in-memory stores; no network.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { readJobState } from "../../actors/follow.js";
import { encodeJob } from "../../actors/coordinator/codec.js";
import { COORDINATOR_LEASE_MS } from "../../actors/coordinator/host.js";
import { freshJob } from "../../actors/coordinator/placement.js";
import { buildResult, type PersistedJob } from "../../actors/coordinator/state.js";
import {
  DEFAULT_FOLLOW_TIMINGS,
  FollowState,
  followLoop,
  type FollowEnd,
  type RecordRead,
} from "../../actors/job/follow.js";
import { JOB_STATE_BUCKET, jobNames } from "../../actors/job/names.js";
import { ShardLedger } from "../../actors/ledger/ledger.js";
import type { TrainResult } from "../../messages/index.js";
import { VirtualScheduler } from "../../runtime/clock.js";
import { acquireLease, openLeaseBucket } from "../../runtime/cluster/lease.js";
import { MemoryStores } from "../../runtime/store/index.js";
import { testSpec } from "./coordinator-harness.js";

const T = DEFAULT_FOLLOW_TIMINGS;
const T0 = 1_000_000;

function job(state: PersistedJob["state"] = "running", extra: Partial<PersistedJob> = {}): PersistedJob {
  const p = freshJob("j1", testSpec(), 3, T0);
  return { ...p, state, step: 12, ...extra };
}

function result(): TrainResult {
  const p = job();
  return buildResult(p, ShardLedger.restore(p.ledger), "completed", { loss: 0.1, accuracy: 0.95 }, T0 + 5000);
}

test("a follower reads the record at once, then only after a silence, then every pollMs", () => {
  const s = new FollowState("j1", T, T0);
  assert.equal(s.wantsRead(T0), true, "a job that may be long over is read at once");
  s.readStarted();
  assert.equal(s.wantsRead(T0), false, "one read at a time");
  assert.equal(s.readDone({ kind: "running", step: 1 }, T0 + 10), undefined);
  // Events flow: no read, however long, until pollAnywayMs.
  for (let t = T0 + 500; t < T0 + T.pollAnywayMs; t += 500) {
    s.heard(t);
    assert.equal(s.wantsRead(t), false, `no read at +${t - T0} ms while events flow`);
  }
  assert.equal(
    s.wantsRead(T0 + 10 + T.pollAnywayMs),
    true,
    "forged chatter cannot hold the record back forever",
  );
  s.readStarted();
  s.readDone({ kind: "running", step: 5 }, T0 + 10 + T.pollAnywayMs);
  const lastEvent = T0 + 10 + T.pollAnywayMs;
  s.heard(lastEvent);
  assert.equal(s.wantsRead(lastEvent + T.silenceMs - 1), false, "not silent yet");
  assert.equal(s.wantsRead(lastEvent + T.silenceMs), true, "silent: read");
  s.readStarted();
  s.readDone({ kind: "unreachable", why: "timeout" }, lastEvent + T.silenceMs + 100);
  assert.equal(s.failedReads, 1);
  assert.equal(
    s.wantsRead(lastEvent + T.silenceMs + 100 + T.pollMs - 1),
    false,
    "the next poll waits pollMs",
  );
  assert.equal(s.wantsRead(lastEvent + T.silenceMs + 100 + T.pollMs), true);
});

test("readNow (a reconnect, a refused end) makes the next check read, silence or not", () => {
  const s = new FollowState("j1", T, T0);
  s.readStarted();
  s.readDone({ kind: "running", step: 1 }, T0);
  s.heard(T0 + 100);
  assert.equal(s.wantsRead(T0 + 200), false);
  s.readNow();
  assert.equal(s.wantsRead(T0 + 200), true);
  s.readStarted();
  assert.equal(s.wantsRead(T0 + 200), false, "consumed by the read");
});

test("only a finished or failed record ends the follow; unreadable, unreachable and running do not", () => {
  const s = new FollowState("j1", T, T0);
  for (const read of [
    { kind: "unreadable", why: "bad msgpack" },
    { kind: "unreachable", why: "no responders" },
    { kind: "running", step: 3 },
    { kind: "absent", leased: true },
  ] satisfies RecordRead[]) {
    s.readStarted();
    assert.equal(s.readDone(read, T0 + T.appearWithinMs * 2), undefined, read.kind);
  }
  const r = result();
  s.readStarted();
  assert.deepEqual(s.readDone({ kind: "finished", result: r }, T0), {
    kind: "finished",
    result: r,
    via: "record",
  });
  s.readStarted();
  assert.deepEqual(s.readDone({ kind: "failed", error: "cancelled by submitter" }, T0), {
    kind: "failed",
    error: "cancelled by submitter",
    via: "record",
  });
});

test("a job nothing shows (no record, no lease, no event) within appearWithinMs is unknown", () => {
  const absent: RecordRead = { kind: "absent", leased: false };
  const s = new FollowState("nope", T, T0);
  s.readStarted();
  assert.equal(s.readDone(absent, T0 + T.appearWithinMs - 1), undefined, "not yet");
  s.readStarted();
  const end = s.readDone(absent, T0 + T.appearWithinMs);
  assert.equal(end?.kind, "unknown");
  assert.match(end.kind === "unknown" ? end.error : "", /nope.*unknown job id/);
  const leased = new FollowState("j1", T, T0);
  leased.readStarted();
  leased.readDone({ kind: "absent", leased: true }, T0 + 10);
  assert.equal(leased.unknownAt(T0 + T.appearWithinMs * 10), undefined, "a held lease shows the job exists");
  const heard = new FollowState("j1", T, T0);
  heard.heard(T0 + 5);
  assert.equal(heard.unknownAt(T0 + T.appearWithinMs * 10), undefined, "so does an event");
});

/** A reader whose answers the test sets, counting reads and the most at once. */
function fakeReader(initial: RecordRead): {
  read: () => Promise<RecordRead>;
  set: (r: RecordRead) => void;
  hang: (on: boolean) => void;
  stats: { reads: number; maxInFlight: number };
} {
  let answer = initial;
  let hanging = false;
  let inFlight = 0;
  const stats = { reads: 0, maxInFlight: 0 };
  const read = async (): Promise<RecordRead> => {
    stats.reads++;
    inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
    while (hanging) await new Promise((r) => setImmediate(r));
    inFlight--;
    return answer;
  };
  return { read, set: (r) => (answer = r), hang: (on) => (hanging = on), stats };
}

test("the loop ends with the record's result when the live end never comes, through an unreachable store", async () => {
  const sched = new VirtualScheduler(T0);
  const reader = fakeReader({ kind: "running", step: 1 });
  const loop = followLoop({ job: "j1", scheduler: sched, timings: T, read: reader.read });
  let end: FollowEnd | undefined;
  void loop.done.then((e) => (end = e));
  for (let i = 0; i < 20; i++) {
    loop.heard();
    await sched.runFor(500, 250);
  }
  assert.equal(reader.stats.reads, 1, "one read at the start, none while events flow for 10 s");
  reader.set({ kind: "unreachable", why: "JetStream leader election" });
  await sched.runFor(T.silenceMs + T.pollMs * 2, 250);
  assert.equal(end, undefined, "an unreachable store ends nothing");
  assert.ok(reader.stats.reads >= 3, `reads while silent: ${reader.stats.reads}`);
  const r = result();
  reader.set({ kind: "finished", result: r });
  await sched.runFor(T.pollMs + 500, 250);
  assert.deepEqual(end, { kind: "finished", result: r, via: "record" });
  assert.equal(sched.pending, 0, "the loop's timer is cancelled");
});

test("a hanging read is never doubled nor taken for an unknown job; a live end settles the loop first", async () => {
  const sched = new VirtualScheduler(T0);
  const reader = fakeReader({ kind: "running", step: 1 });
  reader.hang(true);
  const loop = followLoop({ job: "j1", scheduler: sched, timings: T, read: reader.read });
  try {
    await sched.runFor(T.pollAnywayMs + T.appearWithinMs, 250);
    assert.equal(reader.stats.maxInFlight, 1);
    assert.equal(reader.stats.reads, 1);
    const r = result();
    loop.ended({ kind: "finished", result: r, via: "event" });
    loop.ended({ kind: "failed", error: "late", via: "event" });
    assert.deepEqual(await loop.done, { kind: "finished", result: r, via: "event" }, "the first end wins");
  } finally {
    reader.hang(false);
  }
  await sched.runFor(1000, 250);
  assert.equal(reader.stats.reads, 1, "no read after the end");
});

test("readJobState decodes the coordinator's record; a missing one says whether a coordinator holds the lease", async () => {
  const stores = new MemoryStores();
  const kv = await stores.kv(JOB_STATE_BUCKET);
  assert.deepEqual(await readJobState(stores, "j1"), { kind: "absent", leased: false });
  const leases = await openLeaseBucket(stores, COORDINATOR_LEASE_MS);
  const lease = await acquireLease(leases, jobNames.leaseKey("j1"), "a:inc1", {
    ttlMs: COORDINATOR_LEASE_MS,
  });
  assert.ok(lease);
  assert.deepEqual(await readJobState(stores, "j1"), { kind: "absent", leased: true });
  await lease.release();
  await kv.put("j1", encodeJob(job("running")));
  assert.deepEqual(await readJobState(stores, "j1"), { kind: "running", step: 12 });
  const r = result();
  await kv.put("j1", encodeJob(job("finished", { result: r })));
  assert.deepEqual(await readJobState(stores, "j1"), { kind: "finished", result: r });
  await kv.put("j1", encodeJob(job("failed", { error: "cancelled by submitter" })));
  assert.deepEqual(await readJobState(stores, "j1"), { kind: "failed", error: "cancelled by submitter" });
  await kv.put("j1", encodeJob(job("finished")));
  assert.equal((await readJobState(stores, "j1")).kind, "unreadable", "finished without a result is no end");
  await kv.put("j1", new Uint8Array([0xc1, 0xff, 0x00]));
  assert.equal((await readJobState(stores, "j1")).kind, "unreadable", "garbage is not yet, never an end");
  await kv.put("j1", encodeJob({ ...job("finished", { result: r }), step: -0.5 }));
  assert.equal((await readJobState(stores, "j1")).kind, "unreadable", "schema-checked");
});

test("readJobState never rejects: a store that cannot be opened is unreachable", async () => {
  const stores = new MemoryStores();
  const broken = {
    cluster: stores.cluster,
    kv: () => Promise.reject(new Error("no responders")),
    blobs: () => stores.blobs("x"),
  };
  assert.deepEqual(await readJobState(broken, "j1"), { kind: "unreachable", why: "no responders" });
});
