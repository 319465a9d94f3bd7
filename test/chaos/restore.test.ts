/**
 * The chaos harness's view of a restore from a checkpoint (pure: no network, no processes): the
 * durability faults are planned past the first checkpoint, the observer follows the step events
 * back to the checkpoint's step, and the invariants accept exactly a rollback that a restore
 * record explains, with `stepsLost` equal to what it rolled back and within the bound.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DURABILITY_FAULT_KINDS,
  FAULT_KINDS,
  IDENTITY_TTL_MS,
  parseFaultKinds,
  planFaults,
} from "../../tools/chaos/schedule.js";
import { checkInvariants, parseRestore, type Observations } from "../../tools/chaos/invariants.js";
import { JobObserver } from "../../tools/chaos/observer.js";
import { JobEvent, type StepSummary } from "../../messages/index.js";

test("durability faults are planned past the first checkpoint, the outage past the identity TTL", () => {
  assert.deepEqual(parseFaultKinds("total, jetstream-outage"), ["total", "jetstream-outage"]);
  for (const seed of [1, 2, 3, 7, 11, 99]) {
    const plan = planFaults({ seed, kinds: FAULT_KINDS, count: 12, totalSteps: 250, checkpointEvery: 25 });
    for (const k of DURABILITY_FAULT_KINDS)
      assert.ok(
        plan.some((f) => f.kind === k),
        `seed ${seed}: ${k} planned`,
      );
    for (const f of plan.filter((f) => DURABILITY_FAULT_KINDS.includes(f.kind)))
      assert.ok(
        f.atStep >= 30,
        `seed ${seed}: ${f.kind} at step ${f.atStep}, after the checkpoint of step 25`,
      );
    for (let i = 1; i < plan.length; i++)
      assert.ok(plan[i]!.atStep > plan[i - 1]!.atStep, `seed ${seed}: steps increase`);
    for (const f of plan.filter((f) => f.kind === "jetstream-outage"))
      assert.ok(f.holdMs > IDENTITY_TTL_MS, `outage of ${f.holdMs} ms outlasts the identity TTL`);
    for (const f of plan.filter((f) => f.kind === "total"))
      assert.ok(f.holdMs >= 3000 && f.holdMs <= 6000, `total loss held ${f.holdMs} ms`);
  }
  const short = planFaults({ seed: 5, kinds: ["total", "jetstream-outage"], count: 2, totalSteps: 250 });
  assert.ok(short[0]!.atStep >= 30 && short[1]!.atStep > short[0]!.atStep);
});

const summary = (step: number, at = 1000 + step): StepSummary => ({
  step,
  epoch: 1,
  samples: 64,
  loss: 1 / step,
  members: 3,
  at,
  t: step,
});
/** A step event (committed at `at`), with up to 4 `earlier` steps from `since` on. */
function stepEvent(step: number, at: number, since = 1, extra: Partial<JobEvent> = {}): JobEvent {
  const from = Math.max(since, step - 4);
  return JobEvent.parse({
    type: "job.step",
    job: "j",
    ...summary(step, at),
    epochs: 1,
    samplesPerSec: 100,
    earlier: Array.from({ length: step - from }, (_, i) => summary(from + i, at - (step - from - i))),
    ...extra,
  });
}
const RESTORE = "restored from the checkpoint of step 25; steps 26..37 are redone";
const restoreEvent = (at: number): JobEvent =>
  JobEvent.parse({
    type: "job.membership",
    job: "j",
    step: 25,
    t: 0,
    at,
    event: { kind: "failover", node: "node-2", detail: RESTORE },
  });

/** Steps 1..37, every process lost, the job restored to step 25 and run on to step 60. */
function restoredJob(announce: boolean): JobObserver {
  const o = new JobObserver();
  for (let s = 1; s <= 37; s++) o.add(stepEvent(s, 1000 + s));
  o.add(stepEvent(37, 2000, 1, { replay: true })); // the adopting coordinator re-announces its last step
  if (announce) o.add(restoreEvent(3000));
  o.add(stepEvent(26, 3001, 26));
  // 27 and 28 lost: filled from 29's `earlier`, though the abandoned timeline had them already
  for (let s = 29; s <= 60; s++) o.add(stepEvent(s, 3000 + s, 26));
  return o;
}

function observations(o: JobObserver, over: Partial<Observations> = {}): Observations {
  return {
    epochs: 1,
    datasetSize: 60 * 64,
    result: {
      status: "completed",
      epochs: 1,
      steps: 60,
      accuracy: 0.9,
      samplesPerEpoch: [60 * 64],
      hashChecks: 1,
      hashMismatches: [],
      commitAudit: { checked: 8, mismatches: [] },
      ledgerAudit: { epochs: [{ epoch: 1, committed: 60 * 64, duplicates: 0, missing: 0 }], exact: true },
      stepsLost: 12,
      membership: [{ kind: "failover", detail: RESTORE, at: 3000 }],
    },
    steps: o.steps,
    hashes: [{ version: 10, consistent: true, hashes: { a: "x", b: "x" } }],
    baselineAccuracy: 0.9,
    tolerance: 0.03,
    unexpectedExits: [],
    fatalLines: [],
    counters: [{ node: "node-1", pid: 1, scraped: true, badInput: {}, deadLetters: {} }],
    plannedFaults: 1,
    injectedFaults: 1,
    membership: o.membership,
    checkpointEvery: 25,
    durabilityFaults: 1,
    ...over,
  };
}

test("a restore record parses to the steps it rolled back", () => {
  assert.deepEqual(parseRestore(RESTORE), { to: 25, from: 37 });
  assert.equal(parseRestore("standby took over"), undefined);
  assert.equal(parseRestore(undefined), undefined);
});

test("steps going back to the checkpoint with a restore record pass, announced or only in the result", () => {
  for (const announce of [true, false]) {
    const o = restoredJob(announce);
    assert.equal(o.step, 60);
    assert.deepEqual(
      o.steps.map((s) => s.step),
      [...Array.from({ length: 37 }, (_, i) => i + 1), ...Array.from({ length: 35 }, (_, i) => i + 26)],
      `announce ${announce}: the redone steps 26..60 counted once each, 27 and 28 from 29's earlier`,
    );
    assert.equal(o.rollbacks.length, 1);
    assert.deepEqual({ to: o.rollbacks[0]!.to, from: o.rollbacks[0]!.from }, { to: 25, from: 37 });
    const v = checkInvariants(observations(o));
    for (const [name, r] of Object.entries(v)) assert.ok(r.ok, `announce ${announce}: ${name}: ${r.detail}`);
    assert.match(v.stepsMonotonic.detail, /back 12 step\(s\) only at 1 restore/);
    assert.match(
      v.stepsLost.detail,
      /stepsLost 12 \(≤ 25 × 1 durability fault\(s\)\); restores \(from→to step\): 37→25/,
    );
  }
});

test("a rollback without a restore record, or one the record does not explain, fails", () => {
  const o = restoredJob(false);
  const bare = observations(o);
  bare.result!.membership = [];
  bare.result!.stepsLost = 0;
  const v = checkInvariants(bare);
  assert.match(v.stepsMonotonic.detail, /step 26 committed twice/);
  // The record says the job was at step 30: steps 31..37 were committed and then lost uncounted.
  const short = observations(o, { membership: [] });
  short.result!.membership = [
    {
      kind: "failover",
      detail: "restored from the checkpoint of step 25; steps 26..30 are redone",
      at: 3000,
    },
  ];
  short.result!.stepsLost = 5;
  assert.match(
    checkInvariants(short).stepsMonotonic.detail,
    /step 37 was committed, but the restore to step 25 counts the job as at step 30/,
  );
  assert.match(
    checkInvariants(short).stepsLost.detail,
    /the step events went back 12 step\(s\), stepsLost is 5/,
  );
});

test("stepsLost must match the restore records, stay within the bound, and be 0 without a durability fault", () => {
  const o = restoredJob(true);
  const wrong = observations(o);
  wrong.result!.stepsLost = 11;
  assert.match(
    checkInvariants(wrong).stepsLost.detail,
    /the result says stepsLost 11, its restore records add up to 12/,
  );
  assert.match(
    checkInvariants(observations(o, { checkpointEvery: 10 })).stepsLost.detail,
    /12 step\(s\) lost, more than checkpointEvery 10 × 1 durability fault/,
  );
  const none = checkInvariants(observations(o, { durabilityFaults: 0 })).stepsLost;
  assert.equal(none.ok, false);
  assert.match(
    none.detail,
    /1 restore\(s\) from a checkpoint \(12 step\(s\) lost\) with no total or jetstream-outage fault/,
  );
});

test("the ledger's event total counts the redone steps, not the abandoned ones", () => {
  const o = restoredJob(true);
  const v = checkInvariants(observations(o));
  assert.equal(v.shardLedgerExact.ok, true, v.shardLedgerExact.detail);
});

test("a restore that rolled nothing back is not taken for a later one's rollback", () => {
  const o = restoredJob(true);
  const v = observations(o);
  // An earlier restore on its own checkpoint step (the job died right after committing step 10).
  v.result!.membership = [
    {
      kind: "failover",
      detail: "restored from the checkpoint of step 10; steps 11..10 are redone",
      at: 1500,
    },
    ...v.result!.membership!,
  ];
  const r = checkInvariants(v);
  assert.equal(r.stepsMonotonic.ok, true, r.stepsMonotonic.detail);
  assert.equal(r.stepsLost.ok, true, r.stepsLost.detail);
});
