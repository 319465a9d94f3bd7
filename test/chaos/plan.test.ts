/** The chaos harness's pure parts: seeded plans and invariant verdicts. No network, no processes. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createRng } from "../../tools/chaos/rng.js";
import { FAULT_KINDS, parseFaultKinds, planFaults } from "../../tools/chaos/schedule.js";
import { checkInvariants, stepsMonotonic, type Observations } from "../../tools/chaos/invariants.js";
import { parseCounter } from "../../tools/chaos/daemon.js";
import { JobObserver } from "../../tools/chaos/observer.js";
import { JobEvent, type StepSummary } from "../../messages/index.js";

test("the same seed draws the same numbers; another seed does not", () => {
  const a = createRng(42);
  const b = createRng(42);
  const c = createRng(43);
  const xs = Array.from({ length: 20 }, () => a.next());
  assert.deepEqual(
    xs,
    Array.from({ length: 20 }, () => b.next()),
  );
  assert.notDeepEqual(
    xs,
    Array.from({ length: 20 }, () => c.next()),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
});

test("a plan has every kind at least once, in a seeded order, steps increasing", () => {
  for (const seed of [1, 2, 3, 99, 123456]) {
    const plan = planFaults({ seed, kinds: FAULT_KINDS, count: 12, totalSteps: 1000 });
    assert.equal(plan.length, 12);
    for (const k of FAULT_KINDS)
      assert.ok(
        plan.some((f) => f.kind === k),
        `seed ${seed}: ${k} planned`,
      );
    assert.deepEqual(
      new Set(plan.slice(0, FAULT_KINDS.length).map((f) => f.kind)),
      new Set(FAULT_KINDS),
      "each kind once before any repeats",
    );
    for (let i = 1; i < plan.length; i++)
      assert.ok(plan[i]!.atStep > plan[i - 1]!.atStep, `seed ${seed}: steps increase`);
    assert.ok(plan.at(-1)!.atStep <= 800, "faults leave the last part of the job to recover");
    assert.deepEqual(
      plan,
      planFaults({ seed, kinds: FAULT_KINDS, count: 12, totalSteps: 1000 }),
      "replayable",
    );
  }
  const firsts = new Set(
    [1, 2, 3, 4, 5, 6, 7, 8].map(
      (seed) => planFaults({ seed, kinds: FAULT_KINDS, count: 6, totalSteps: 500 })[0]!.kind,
    ),
  );
  assert.ok(firsts.size > 1, "the seed decides the order");
  const repeats = [1, 2, 3, 4, 5, 6, 7, 8].flatMap((seed) =>
    planFaults({ seed, kinds: FAULT_KINDS, count: 24, totalSteps: 2000 }).filter(
      (f) => f.kind === "coordinator",
    ),
  );
  assert.ok(repeats.length > 8, "coordinator faults are drawn again after the first round");
});

test("fault kinds parse, and an unknown one is refused by name", () => {
  assert.deepEqual(parseFaultKinds("kill, slow,kill"), ["kill", "slow"]);
  assert.throws(() => parseFaultKinds("kill,meteor"), /unknown fault kind\(s\) meteor/);
});

test("counters are read from Prometheus text by reason", () => {
  const text = [
    "# TYPE flock_bad_input_total counter",
    'flock_bad_input_total{reason="fenced"} 3',
    'flock_bad_input_total{reason="decode"} 1',
    'flock_dead_letters_total{reason="stopped"} 7',
    "flock_bad_input_totally_else 9",
  ].join("\n");
  assert.deepEqual(parseCounter(text, "flock_bad_input_total"), { fenced: 3, decode: 1 });
  assert.deepEqual(parseCounter(text, "flock_dead_letters_total"), { stopped: 7 });
});

test("committed steps: a step twice, a step back and a gap each fail with what happened", () => {
  const s = (step: number) => ({ step, epoch: 1, samples: 64, at: step });
  assert.equal(stepsMonotonic([s(1), s(2), s(3)], 3).ok, true);
  assert.match(stepsMonotonic([s(1), s(2), s(2), s(3)], 3).detail, /step 2 committed twice/);
  assert.match(stepsMonotonic([s(1), s(3)], 3).detail, /steps 2–2 never reported/);
  assert.match(stepsMonotonic([s(1), s(2)], 3).detail, /last step event is 2, the result says 3/);
});

test("a lost step event is filled in from the next event's earlier steps; a replay counts once", () => {
  const summary = (step: number): StepSummary => ({
    step,
    epoch: 1,
    samples: 64,
    loss: 1 / step,
    members: 3,
    at: 1000 + step,
    t: step,
  });
  const event = (step: number, extra: Partial<JobEvent> = {}): JobEvent =>
    JobEvent.parse({
      type: "job.step",
      job: "j",
      ...summary(step),
      epochs: 1,
      samplesPerSec: 100,
      earlier: Array.from({ length: Math.min(4, step - 1) }, (_, i) =>
        summary(step - Math.min(4, step - 1) + i),
      ),
      ...extra,
    });
  const delivered = [1, 2, 3, /* 4 and 5 lost */ 6, 7].map((n) => event(n));
  const observer = new JobObserver();
  for (const e of delivered) observer.add(e);
  observer.add(event(7, { replay: true })); // a coordinator that took over re-announces step 7
  assert.deepEqual(
    observer.steps.map((s) => s.step),
    [1, 2, 3, 4, 5, 6, 7],
  );
  assert.equal(stepsMonotonic(observer.steps, 7).ok, true);
  assert.equal(observer.step, 7);

  const bare = new JobObserver(); // events without `earlier`: the gap is reported
  for (const e of delivered) bare.add({ ...e, earlier: undefined } as JobEvent);
  assert.match(stepsMonotonic(bare.steps, 7).detail, /steps 4–5 never reported/);
  const twice = new JobObserver(); // the same step committed twice (not a replay) still fails
  for (const e of [event(1), event(2), event(2)]) twice.add(e);
  assert.match(stepsMonotonic(twice.steps, 2).detail, /step 2 committed twice/);
});

function observations(over: Partial<Observations> = {}): Observations {
  const steps = Array.from({ length: 4 }, (_, i) => ({ step: i + 1, epoch: 1, samples: 25, at: i }));
  return {
    epochs: 1,
    datasetSize: 100,
    result: {
      status: "completed",
      epochs: 1,
      steps: 4,
      accuracy: 0.9,
      samplesPerEpoch: [100],
      hashChecks: 1,
      hashMismatches: [],
      commitAudit: { checked: 8, mismatches: [] },
      ledgerAudit: { epochs: [{ epoch: 1, committed: 100, duplicates: 0, missing: 0 }], exact: true },
    },
    steps,
    hashes: [{ version: 0, consistent: true, hashes: { a: "x", b: "x" } }],
    baselineAccuracy: 0.91,
    tolerance: 0.03,
    unexpectedExits: [],
    fatalLines: [],
    counters: [{ node: "node-1", pid: 1, scraped: true, badInput: {}, deadLetters: { stopped: 2 } }],
    plannedFaults: 1,
    injectedFaults: 1,
    ...over,
  };
}

test("a clean run passes every invariant", () => {
  const v = checkInvariants(observations());
  for (const [name, r] of Object.entries(v)) assert.ok(r.ok, `${name}: ${r.detail}`);
});

test("a reducer that summed a dead member's slice fails the commit audit, naming it", () => {
  const o = observations();
  o.result!.commitAudit = {
    checked: 8,
    mismatches: ["step 3 reducer 1 summed [node-1,node-2], commit set [node-1]"],
  };
  const v = checkInvariants(o);
  assert.equal(v.commitAudit.ok, false);
  assert.match(
    v.commitAudit.detail,
    /^commit audit: 1 reducer application\(s\) summed other slices than the step's commit set/,
  );
});

test("ledger, replicas, accuracy, processes and fault count each fail on their own evidence", () => {
  const o = observations({
    hashes: [{ version: 10, consistent: false, hashes: { a: "x", b: "y" } }],
    baselineAccuracy: 0.8,
    unexpectedExits: [{ name: "node-2", pid: 9, code: 1, signal: null, lastLines: "boom" }],
    fatalLines: [{ name: "node-3[7]", line: "uncaughtException: x" }],
    injectedFaults: 0,
  });
  o.result!.samplesPerEpoch = [99];
  o.result!.ledgerAudit!.exact = false;
  const v = checkInvariants(o);
  assert.match(v.shardLedgerExact.detail, /epoch 1 counted 99 samples, the dataset has 100/);
  assert.match(v.replicasConsistent.detail, /replicas diverged at version\(s\) 10/);
  assert.match(v.accuracy.detail, /tolerance ±0.03/);
  assert.equal(v.accuracy.ok, false);
  assert.match(v.processes.detail, /node-2 \(pid 9\) exited on its own \(code 1\)/);
  assert.match(v.processes.detail, /uncaughtException/);
  assert.match(v.faultsInjected.detail, /only 0 of 1 planned faults/);
  assert.equal(
    checkInvariants(observations({ result: undefined, error: "timed out" })).jobCompleted.detail,
    "job did not complete: timed out",
  );
});
