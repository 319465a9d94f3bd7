import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CHANGE_RECORDS_HEAD,
  CHANGE_RECORDS_TAIL,
  QUIET_RECORDS_HEAD,
  QUIET_RECORDS_TAIL,
} from "../../actors/coordinator/model.js";
import { record } from "../../actors/coordinator/records.js";
import { decodeJob, encodeJob } from "../../actors/coordinator/codec.js";
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
  assert.equal(p.membershipDropped?.quiet, steps - stragglers.length);
  // The first ones and the latest ones are kept.
  assert.equal(stragglers[0]?.step, 0);
  assert.equal(stragglers.at(-1)?.step, steps - 1);
  assert.equal(stragglers[QUIET_RECORDS_HEAD]?.step, steps - QUIET_RECORDS_TAIL);
  const ledger = d.m.s.ledger;
  assert.ok(ledger);
  const joins = p.membership.filter((r) => r.kind !== "straggler" && r.kind !== "suspect").length;
  assert.equal(buildResult(p, ledger, "running", undefined, d.now).membershipChanges, joins);
});

test("records of real changes stay bounded too; the persisted drop count keeps membershipChanges exact", () => {
  const d = new Driver(["a", "b"], testSpec({ epochs: 100 }));
  d.place(["a", "b"]);
  const p = d.m.s.p;
  const ledger = d.m.s.ledger;
  assert.ok(p && ledger);
  const before = buildResult(p, ledger, "running", undefined, d.now).membershipChanges;
  const cycles = CHANGE_RECORDS_HEAD + CHANGE_RECORDS_TAIL;
  for (let i = 0; i < cycles; i++) {
    record(d.m, { kind: "death", node: "b", detail: `cycle ${i}` });
    record(d.m, { kind: "join", node: "b", detail: `cycle ${i}` });
    record(d.m, { kind: "straggler", node: "a" });
  }
  const changes = p.membership.filter((r) => r.kind !== "straggler" && r.kind !== "suspect");
  assert.equal(changes.length, CHANGE_RECORDS_HEAD + CHANGE_RECORDS_TAIL);
  assert.equal(
    p.membership.length,
    CHANGE_RECORDS_HEAD + CHANGE_RECORDS_TAIL + QUIET_RECORDS_HEAD + QUIET_RECORDS_TAIL,
  );
  assert.deepEqual(p.membershipDropped, {
    changes: before + 2 * cycles - changes.length,
    quiet: cycles - QUIET_RECORDS_HEAD - QUIET_RECORDS_TAIL,
  });
  assert.equal(changes.at(-1)?.detail, `cycle ${cycles - 1}`, "the latest are kept");
  // The count survives a takeover: it is part of the persisted record.
  const restored = decodeJob(encodeJob(p));
  const result = buildResult(restored, ledger, "running", undefined, d.now);
  assert.equal(result.membershipChanges, before + 2 * cycles);
  assert.deepEqual(result.membershipRecordsDropped, restored.membershipDropped);
});
