import assert from "node:assert/strict";
import { test } from "node:test";
import { QUIET_RECORDS_HEAD, QUIET_RECORDS_TAIL } from "../../actors/coordinator/model.js";
import { buildResult } from "../../actors/coordinator/state.js";
import { Driver, testSpec } from "./coordinator-harness.js";

/** Both members answer, every reducer applies, the state write lands: the next step starts. */
function commitStep(d: Driver): void {
  d.done("a");
  d.done("b");
  d.applyAll();
  d.persisted();
}

function applied(d: Driver, r: number): void {
  const s = d.m.s;
  d.send({
    type: "message",
    msg: {
      type: "coord.applied",
      term: s.term,
      step: (s.p?.step ?? 0) + 1,
      attempt: s.attempt,
      r,
      summed: ["a", "b"],
      n: 8,
    },
    from: s.p?.reducers.addresses[r], // the reducer's own acknowledgement (none for a bad r)
  });
}

test("coord.applied counts only a valid reducer index, each once", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  d.done("a");
  d.done("b");
  assert.equal(d.m.phase, "committing");
  const before = d.m.s.ignored;
  for (const r of [2, 99, -1, 0.5, 0, 0]) applied(d, r);
  assert.equal(
    d.m.phase,
    "committing",
    "two reducers: a forged r or a repeated 0 must not complete the commit",
  );
  assert.equal(d.m.s.ignored - before, 5);
  assert.equal(d.m.s.p?.commitAudit.checked, 1);
  applied(d, 1);
  assert.equal(d.m.s.p?.step, 1);
});

test("coord.checkpointed counts each reducer once, only for a checkpoint asked for", () => {
  const d = new Driver(["a", "b"], testSpec({ epochs: 4, checkpointEvery: 5 }));
  d.place(["a", "b"]);
  for (let i = 0; i < 5; i++) commitStep(d);
  assert.equal(d.told("reducer.checkpoint").length, 2, "asked at step 5");
  const ack = (step: number, r: number): void => {
    d.send({
      type: "message",
      msg: { type: "coord.checkpointed", term: d.m.s.term, step, r, bytes: 10, sha256: "0".repeat(64) },
      from: d.m.s.p?.reducers.addresses[r],
    });
  };
  const before = d.m.s.ignored;
  ack(5, 0);
  ack(5, 0);
  ack(5, 7);
  ack(4, 1);
  ack(10, 1);
  assert.equal(d.m.s.p?.checkpointStep, null, "one reducer wrote; the duplicate stands in for nobody");
  assert.equal(d.m.s.ignored - before, 4);
  ack(5, 1);
  assert.equal(d.m.s.p?.checkpointStep, null, "complete only once its manifest is written");
  const w = d.one("writeManifest");
  d.send({ type: "manifestWritten", gen: w.gen, restores: w.restores, step: w.manifest.step });
  assert.equal(d.m.s.p?.checkpointStep, 5);
  ack(5, 1);
  assert.equal(d.m.s.ignored - before, 5, "a late duplicate for a checkpoint already complete");
});

test("a permanent straggler's records stay bounded; membershipChanges is unchanged", () => {
  const d = new Driver(["a", "b"], testSpec({ epochs: 100, stepDeadlineMs: 100 }));
  d.place(["a", "b"]);
  const steps = QUIET_RECORDS_HEAD + QUIET_RECORDS_TAIL + 60;
  for (let i = 0; i < steps; i++) {
    d.done("a");
    for (let t = 0; t < 40 && d.m.phase !== "committing"; t++) d.tick();
    assert.equal(d.m.phase, "committing", `step ${i + 1}: b left out`);
    d.applyAll();
    d.persisted();
  }
  const p = d.m.s.p;
  assert.ok(p);
  const stragglers = p.membership.filter((r) => r.kind === "straggler");
  assert.equal(stragglers.length, QUIET_RECORDS_HEAD + QUIET_RECORDS_TAIL);
  assert.equal(d.m.s.quietRecordsDropped, steps - stragglers.length);
  // The first ones and the latest ones are kept.
  assert.equal(stragglers[0]?.step, 0);
  assert.equal(stragglers.at(-1)?.step, steps - 1);
  assert.equal(stragglers[QUIET_RECORDS_HEAD]?.step, steps - QUIET_RECORDS_TAIL);
  const ledger = d.m.s.ledger;
  assert.ok(ledger);
  const joins = p.membership.filter((r) => r.kind !== "straggler" && r.kind !== "suspect").length;
  assert.equal(buildResult(p, ledger, "running", undefined, d.now).membershipChanges, joins);
});
