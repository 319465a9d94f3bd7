/**
 * Terms only from the current lease holder: the pure decision, the guard's rate-limited re-reads
 * on virtual time, and a reducer that a forged huge term no longer freezes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ActorSystem } from "../../runtime/actor/index.js";
import { VirtualScheduler } from "../../runtime/clock.js";
import { acquireLease, openLeaseBucket } from "../../runtime/cluster/lease.js";
import { silentLogger } from "../../runtime/log.js";
import { MemoryStores } from "../../runtime/store/index.js";
import { InProcBus } from "../../runtime/transport/index.js";
import { resolveJobSpec } from "../../actors/api.js";
import { COORDINATOR_LEASE_MS } from "../../actors/coordinator/host.js";
import { IGNORED_MESSAGES_METRIC } from "../../actors/ignored.js";
import { jobNames } from "../../actors/job/names.js";
import { reducerBehavior } from "../../actors/reducer/behavior.js";
import type { Aborted, ReducerCommand } from "../../actors/reducer/protocol.js";
import {
  decideTerm,
  holderNode,
  leaseTermCheck,
  MIN_REREAD_MS,
  TermGuard,
  type LeaseView,
} from "../../actors/term-guard.js";

const LEASE = { holder: "node-a:inc1", revision: 7 };

test("decideTerm: accepted from the holder's node up to the lease's revision, re-read when unknown", () => {
  const fresh = { lease: LEASE, readAt: 1000 };
  assert.deepEqual(decideTerm(fresh, 5, "node-a", 1000), { kind: "accept" });
  assert.deepEqual(decideTerm(fresh, 7, "node-a", 1000), { kind: "accept" });
  // Above the revision: maybe a new holder since the reading; read again once the interval passed,
  // waiting for it when the reading is too recent — unless this sender was refuted just now.
  assert.deepEqual(decideTerm(fresh, 8, "node-a", 1000), { kind: "wait", ms: MIN_REREAD_MS });
  assert.deepEqual(decideTerm(fresh, 8, "node-a", 1000 + MIN_REREAD_MS), { kind: "reread" });
  assert.deepEqual(decideTerm(fresh, 1e15, "node-a", 1000 + 50), { kind: "wait", ms: MIN_REREAD_MS - 50 });
  assert.deepEqual(decideTerm(fresh, 1e15, "node-a", 1050, MIN_REREAD_MS, 1000), {
    kind: "refuse",
    reason: "unknown-term",
  });
  assert.deepEqual(decideTerm(fresh, 8, "node-b", 1050, MIN_REREAD_MS, 1000 - MIN_REREAD_MS), {
    kind: "wait",
    ms: MIN_REREAD_MS - 50,
  });
  // Another node never speaks for the holder with a term the reading knows.
  assert.deepEqual(decideTerm(fresh, 7, "node-b", 1000), { kind: "refuse", reason: "not-lease-holder" });
  assert.deepEqual(decideTerm(fresh, 7, "node-b", 1000 + MIN_REREAD_MS), { kind: "reread" });
  assert.deepEqual(decideTerm({ lease: undefined, readAt: 1000 }, 1, "node-a", 1001), {
    kind: "wait",
    ms: MIN_REREAD_MS - 1,
  });
  assert.deepEqual(decideTerm({ lease: undefined, readAt: 1000 }, 1, "node-a", 1001, MIN_REREAD_MS, 1000), {
    kind: "refuse",
    reason: "no-lease",
  });
  assert.deepEqual(decideTerm(undefined, 1, "node-a", 0), { kind: "reread" });
});

test("a node id with ':' is the holder of its own lease, and a prefix of it is not", () => {
  const lease = { lease: { holder: "gpu:1:inc1", revision: 3 }, readAt: 1000 };
  assert.equal(holderNode("gpu:1:inc1"), "gpu:1");
  assert.deepEqual(decideTerm(lease, 3, "gpu:1", 1000), { kind: "accept" });
  assert.deepEqual(decideTerm(lease, 3, "gpu", 1000), { kind: "refuse", reason: "not-lease-holder" });
});

test("TermGuard reads the lease at most once per interval, however many forged terms come", async () => {
  const clock = new VirtualScheduler();
  let lease: LeaseView | undefined = { ...LEASE };
  let reads = 0;
  const guard = new TermGuard(async () => {
    reads++;
    return lease && { ...lease };
  }, clock);
  assert.equal(await guard.check(7, "node-a/job-j.coordinator"), undefined);
  assert.equal(reads, 1);
  // The first unknown term waits for the next allowed read; that read refutes the sender, whose
  // further unknown terms are refused at once.
  const first = guard.check(1e15, "node-a/$ask");
  clock.advance(MIN_REREAD_MS);
  assert.equal(await first, "unknown-term");
  assert.equal(reads, 2);
  for (let i = 1; i < 100; i++) assert.equal(await guard.check(1e15 + i, "node-a/$ask"), "unknown-term");
  assert.equal(await guard.check(7, "node-b/x"), "not-lease-holder");
  assert.equal(await guard.check(7, "nonsense"), "no-sender");
  assert.equal(
    await guard.check(7, "node-a/$ask"),
    undefined,
    "the current term still passes from the cache",
  );
  assert.equal(reads, 2, "no re-read within the interval");
  // A new holder on node-b acquires: its term is found on the next allowed re-read.
  lease = { holder: "node-b:inc2", revision: 9 };
  clock.advance(MIN_REREAD_MS);
  assert.equal(await guard.check(9, "node-b/$ask"), undefined);
  assert.equal(reads, 3);
  assert.equal(await guard.check(9, "node-a/$ask"), "not-lease-holder", "the old holder is refused now");
  // A failed read refuses unknown terms (never trusts them) and is retried after the interval.
  const failing = new TermGuard(() => Promise.reject(new Error("store down")), clock);
  assert.equal(await failing.check(1, "node-a/$ask"), "no-lease");
});

test("a new holder's first term right after a fresh reading waits for the next read instead of being refused", async () => {
  const clock = new VirtualScheduler();
  let lease: LeaseView = { ...LEASE };
  let reads = 0;
  const guard = new TermGuard(async () => {
    reads++;
    return { ...lease };
  }, clock);
  assert.equal(await guard.check(7, "node-a/job-j.coordinator"), undefined);
  // node-a dies; node-b takes the lease 10 ms after the reading and sends its first command at 50 ms.
  clock.advance(10);
  lease = { holder: "node-b:inc2", revision: 8 };
  clock.advance(40);
  const check = guard.check(8, "node-b/job-j.coordinator");
  let settled = false;
  void check.then(() => (settled = true));
  clock.advance(MIN_REREAD_MS - 51);
  await Promise.resolve();
  assert.equal(settled, false, "it waits for the reading to be old enough to repeat");
  clock.advance(1);
  assert.equal(await check, undefined, "accepted on the new reading");
  assert.equal(reads, 2);
  assert.equal(await guard.check(7, "node-a/job-j.coordinator"), "not-lease-holder", "the old holder is out");
});

test("a reducer refuses a forged huge term and goes on with the real coordinator's term", async (t) => {
  const stores = new MemoryStores();
  const clock = new VirtualScheduler();
  const kv = await openLeaseBucket(stores, COORDINATOR_LEASE_MS);
  const held = await acquireLease(kv, jobNames.leaseKey("j"), "node-a:inc1", {
    ttlMs: COORDINATOR_LEASE_MS,
    scheduler: clock,
  });
  assert.ok(held, "lease acquired");
  const term = held.revision;
  const system = await ActorSystem.start({
    nodeId: "node-a",
    transport: new InProcBus().connect(),
    ownsTransport: true,
    log: silentLogger(),
  });
  t.after(async () => {
    await held.release();
    await system.stop();
  });
  const spec = { ...resolveJobSpec("mnist"), optimizer: { name: "sgd" as const, lr: 0.5 } };
  const reducer = system.spawn(
    reducerBehavior(
      { job: "j", r: 0, offset: 0, length: 4, spec },
      {
        publish: () => undefined,
        blobs: () => stores.blobs("ckpt"),
        scheduler: clock,
        metrics: system.metrics,
        terms: leaseTermCheck(stores, "j", clock),
      },
    ),
    { name: "reducer", supervision: { strategy: "stop" } },
  );
  const ref = system.ref<ReducerCommand>(reducer.address);
  const ask = { timeoutMs: 2000 };
  const load = (n: number) =>
    ref.ask<{ type: string }>(
      { type: "reducer.load", term: n, version: 0, data: new Float32Array(4), checkpointStep: null },
      ask,
    );
  await assert.rejects(load(1e15), /refused: unknown-term/);
  assert.equal((await load(term)).type, "reducer.loaded");
  const aborted = await ref.ask<Aborted>({ type: "reducer.abort", term, step: 1 }, ask);
  assert.equal(aborted.type, "reducer.aborted", "the real term is still accepted after the forged one");
  const ignored = system.metrics.byLabel(IGNORED_MESSAGES_METRIC, "reason");
  assert.equal(ignored["unknown-term"], 1);
});
