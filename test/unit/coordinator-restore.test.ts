/**
 * The coordinator machine's checkpoint and restore paths on virtual time: a checkpoint is
 * complete only once its manifest is written; retention keeps the last K; when no live trainer
 * holds the parameters the job rolls back to the checkpoint (ledger, step), rebuilds every
 * reducer from its part, counts the steps lost, and — after nodes join again — completes every
 * epoch exactly once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeJob, encodeJob } from "../../actors/coordinator/codec.js";
import type { CheckpointManifest } from "../../actors/coordinator/manifest.js";
import { buildResult } from "../../actors/coordinator/state.js";
import { Driver, member, nodeInfo, prepared, testSpec } from "./coordinator-harness.js";

const SPEC = testSpec({ epochs: 3, checkpointEvery: 5, keepCheckpoints: 2, maxWorkers: 2 });

/** Every member reports the step in flight; every reducer applies it; its state write lands. */
function commitStep(d: Driver): void {
  for (const x of d.m.s.p?.members ?? []) d.done(x.node);
  d.applyAll();
  d.persisted();
}

/** Every reducer acknowledges its part of the checkpoint asked for; returns the manifest the machine writes. */
function checkpoint(d: Driver): CheckpointManifest {
  const asks = d.told("reducer.checkpoint");
  assert.equal(asks.length, 2, "each reducer is asked");
  asks.forEach((c, r) => {
    if (c.msg.type !== "reducer.checkpoint") return;
    d.send({
      type: "message",
      msg: {
        type: "coord.checkpointed",
        term: c.msg.term,
        step: c.msg.step,
        r,
        bytes: 100 + r,
        sha256: "a".repeat(64),
      },
      from: c.to,
    });
  });
  const w = d.one("writeManifest");
  d.send({ type: "manifestWritten", gen: w.gen, restores: w.restores, step: w.manifest.step });
  return w.manifest;
}

/** A job on a and b that committed 7 steps, with a complete checkpoint at step 5. */
function jobAtStep7(): { d: Driver; manifest: CheckpointManifest; ledgerAt5: string } {
  const d = new Driver(["a", "b", "c"], SPEC);
  d.place(["a", "b"]);
  for (let i = 0; i < 5; i++) commitStep(d);
  const ledgerAt5 = JSON.stringify(d.m.s.ledger?.samplesPerEpoch());
  const manifest = checkpoint(d);
  commitStep(d);
  commitStep(d);
  assert.equal(d.m.s.p?.step, 7);
  return { d, manifest, ledgerAt5 };
}

test("the manifest names each part and holds the state at its step; checkpointStep moves only once it is written", () => {
  const d = new Driver(["a", "b"], SPEC);
  d.place(["a", "b"]);
  for (let i = 0; i < 5; i++) commitStep(d);
  const ledgerAt5 = d.m.s.p?.ledger;
  const asks = d.told("reducer.checkpoint");
  commitStep(d); // the live ledger moves on before the parts are acknowledged
  asks.forEach((c, r) =>
    d.send({
      type: "message",
      msg: { type: "coord.checkpointed", term: d.m.s.term, step: 5, r, bytes: 7, sha256: "b".repeat(64) },
      from: c.to,
    }),
  );
  assert.equal(d.m.s.p?.checkpointStep, null, "all parts written, but no manifest yet");
  const w = d.one("writeManifest");
  const m = w.manifest;
  assert.deepEqual(
    m.parts.map((x) => [x.r, x.name, x.offset, x.length, x.bytes]),
    [
      [0, "ckpt.j.5.r0", 0, 50, 7],
      [1, "ckpt.j.5.r1", 50, 50, 7],
    ],
  );
  assert.equal(m.step, 5);
  assert.equal(m.state.ledger, ledgerAt5, "the ledger at step 5, not the live one");
  assert.equal(m.state.rng.seed, SPEC.seed);
  assert.equal(m.state.rng.nextPosition, ledgerAt5?.next);
  d.send({ type: "manifestFailed", gen: w.gen, restores: w.restores, step: 5, error: "store full" });
  assert.equal(d.m.s.p?.checkpointStep, null, "a failed manifest leaves the previous checkpoint the latest");
  d.send({ type: "manifestWritten", gen: w.gen, restores: w.restores, step: 5 });
  assert.equal(d.m.s.p?.checkpointStep, 5);
  assert.deepEqual(d.one("pruneCheckpoints").keep, [5]);
});

test("retention keeps the last keepCheckpoints complete checkpoints in the record", () => {
  const d = new Driver(["a", "b"], testSpec({ epochs: 10, checkpointEvery: 5, keepCheckpoints: 2 }));
  d.place(["a", "b"]);
  for (let k = 1; k <= 3; k++) {
    for (let i = 0; i < 5; i++) commitStep(d);
    checkpoint(d);
  }
  assert.deepEqual(d.m.s.p?.checkpoints, [10, 15]);
  assert.deepEqual(d.take("pruneCheckpoints").at(-1)?.keep, [10, 15]);
  const saved = decodeJob(encodeJob(d.m.s.p!));
  assert.deepEqual(saved.checkpoints, [10, 15], "the retained list round-trips through the codec");
});

test("no live trainer: the job rolls back to the checkpoint, rebuilds every reducer from its part and counts the steps lost", () => {
  const { d, manifest, ledgerAt5 } = jobAtStep7();
  d.take("tell");
  d.kill("a");
  d.kill("b");
  const ab = d.take("abortReducers").at(-1);
  assert.ok(ab?.recovery);
  d.send({ type: "reducersAborted", gen: d.gen, ok: [false, false], recovery: ab.recovery });
  const rb = d.one("rebuildReducers");
  assert.deepEqual(rb.trainers, ["c/job-j.trainer"], "only a guess: c was never a member");
  d.send({
    type: "recoveryFailed",
    gen: d.gen,
    error: "no live trainer could give reducer 0",
    noParams: true,
  });
  const read = d.one("readCheckpoint");
  assert.equal(read.maxStep, 7);
  d.send({
    type: "checkpointRead",
    gen: d.gen,
    token: read.token,
    manifest,
    refused: ["ckpt.j.7.manifest: bad"],
  });
  const rr = d.one("restoreReducers");
  assert.equal(rr.step, 5);
  assert.deepEqual(
    rr.spawns.map((s) => [s.r, s.node, s.name]),
    [
      [0, "c", "job-j.reducer-0.g1"],
      [1, "c", "job-j.reducer-1.g1"],
    ],
  );
  assert.deepEqual(rr.parts, manifest.parts);
  // A manifest of the abandoned timeline landing late must not move the checkpoint.
  d.send({ type: "reducersRestored", gen: d.gen, token: rr.token, addresses: ["c/r0g1", "c/r1g1"] });
  const p = d.m.s.p!;
  assert.equal(p.step, 5);
  assert.equal(p.stepsLost, 2);
  assert.deepEqual(p.reducers.addresses, ["c/r0g1", "c/r1g1"]);
  assert.equal(p.reducerGen, 1);
  assert.equal(
    JSON.stringify(d.m.s.ledger?.samplesPerEpoch()),
    ledgerAt5,
    "the ledger rolled back to step 5",
  );
  assert.ok(p.membership.some((r) => r.kind === "failover" && /checkpoint of step 5/.test(r.detail ?? "")));
  const writes = d.take("persist");
  assert.equal(writes.length, 1, "the rolled-back state is persisted");
  assert.equal(writes[0]?.job.step, 5);
  d.send({ type: "persisted", gen: d.gen, seq: writes[0]?.seq ?? -1 });
  assert.equal(d.m.phase, "paused", "no member left: it waits for minWorkers");
  d.send({ type: "manifestWritten", gen: d.gen, restores: 0, step: 10 });
  assert.equal(p.checkpointStep, 5);
  // A late evaluation of step 7, of the abandoned timeline (same term): it must not stand for the redone step 7.
  const evals = p.evals.length;
  d.send({
    type: "message",
    msg: { type: "coord.evaluated", term: d.m.s.term, version: 7, loss: 9, accuracy: 0.1, n: 10 },
  });
  assert.equal(p.evals.length, evals, "an evaluation ahead of the job's step is ignored");

  // a and b come back (new incarnations) and are admitted at the restored version.
  d.alive.push(nodeInfo("a", "2"), nodeInfo("b", "2"));
  d.tick();
  const admits = d.take("admitJoiner");
  assert.deepEqual(
    admits.map((x) => [x.node, x.version, x.restores]),
    [
      ["a", 5, 1],
      ["b", 5, 1],
    ],
  );
  d.send({
    type: "joinerPrepared",
    gen: d.gen,
    node: "a",
    member: member("a"),
    prepared: prepared(),
    restores: 0,
  });
  assert.equal(d.m.s.readyJoiners.length, 0, "a joiner prepared before the restore is dropped");
  for (const n of ["a", "b"])
    d.send({
      type: "joinerPrepared",
      gen: d.gen,
      node: n,
      member: member(n),
      prepared: prepared(),
      restores: 1,
    });
  const steps = d.told("trainer.step");
  assert.deepEqual(
    steps.map((s) => (s.msg.type === "trainer.step" ? s.msg.step : -1)),
    [6, 6],
    "the steps after the checkpoint are redone, strictly increasing from it",
  );
  const attempt = steps[0]?.msg.type === "trainer.step" ? steps[0].msg.attempt : 0;
  assert.ok(attempt > 0, "a redone step is a new attempt");
  while (!d.m.s.ledger?.finished) commitStep(d);
  const result = buildResult(p, d.m.s.ledger, "completed", undefined, d.now);
  assert.deepEqual(result.samplesPerEpoch, [32, 32, 32], "every sample once per epoch across the restore");
  assert.ok(result.ledgerAudit.exact);
  assert.equal(result.stepsLost, 2);
  assert.equal(p.step, 12, "3 epochs of 4 steps");
});

test("a takeover after every node restarted finds no trainer and restores from the checkpoint in the record", () => {
  const { d: old } = jobAtStep7();
  const saved = decodeJob(encodeJob(old.m.s.p!));
  assert.equal(saved.checkpointStep, 5);
  // Every node restarted: same ids, new incarnations; a new coordinator on x.
  const d = new Driver([], SPEC, "x");
  d.alive = [nodeInfo("a", "2"), nodeInfo("b", "2"), nodeInfo("x", "2")];
  d.send({ type: "acquired", term: 9 });
  d.send({ type: "claimed", gen: d.gen, saved });
  assert.deepEqual(d.m.s.p?.members, [], "members of the old incarnations are gone");
  const ab = d.one("abortReducers");
  d.send({ type: "reducersAborted", gen: d.gen, ok: [false, false], recovery: ab.recovery });
  d.one("rebuildReducers");
  d.send({ type: "recoveryFailed", gen: d.gen, error: "no trainer", noParams: true });
  const read = d.one("readCheckpoint");
  assert.equal(read.maxStep, 7);
});

test("a checkpoint that does not fit the job, or an unreadable one, is refused: nothing rolls back and the recovery is retried", () => {
  const { d, manifest } = jobAtStep7();
  d.kill("a");
  d.kill("b");
  const ab = d.take("abortReducers").at(-1);
  d.send({ type: "reducersAborted", gen: d.gen, ok: [false, false], recovery: ab?.recovery });
  d.take("rebuildReducers");
  d.send({ type: "recoveryFailed", gen: d.gen, error: "no params", noParams: true });
  let read = d.one("readCheckpoint");
  d.send({
    type: "checkpointRead",
    gen: d.gen,
    token: read.token,
    manifest: { ...manifest, paramCount: 99 },
    refused: [],
  });
  assert.equal(d.take("restoreReducers").length, 0);
  assert.equal(d.one("timer").id, "recovery-retry");
  assert.equal(d.m.s.p?.step, 7, "nothing rolled back");
  d.send({ type: "timer", id: "recovery-retry" });
  const ab2 = d.one("abortReducers");
  d.send({ type: "reducersAborted", gen: d.gen, ok: [false, false], recovery: ab2.recovery });
  d.take("rebuildReducers");
  d.send({ type: "recoveryFailed", gen: d.gen, error: "no params", noParams: true });
  read = d.one("readCheckpoint");
  // A stale token (a superseded restore) changes nothing.
  d.send({ type: "checkpointUnreadable", gen: d.gen, token: read.token - 1, error: "old" });
  assert.equal(d.take("timer").length, 0);
  d.send({ type: "checkpointUnreadable", gen: d.gen, token: read.token, error: "no complete checkpoint" });
  assert.equal(d.one("timer").id, "recovery-retry");
  assert.notEqual(d.m.phase, "done");
});

test("every node lost before the first periodic checkpoint: the job restarts from the checkpoint of step 0", () => {
  const d = new Driver(["a", "b", "c"], SPEC);
  d.place(["a", "b"]);
  const start = checkpoint(d); // asked for at placement
  assert.equal(start.step, 0);
  assert.equal(d.m.s.p?.checkpointStep, 0);
  // The record names it, and a successor can decode that record.
  assert.deepEqual(decodeJob(encodeJob(d.m.s.p!)).checkpoints, [0]);
  for (let i = 0; i < 3; i++) commitStep(d);
  assert.ok((d.m.s.ledger?.committedThisEpoch ?? 0) > 0);
  d.kill("a");
  d.kill("b");
  const ab = d.take("abortReducers").at(-1);
  d.send({ type: "reducersAborted", gen: d.gen, ok: [false, false], recovery: ab?.recovery });
  d.take("rebuildReducers");
  d.send({ type: "recoveryFailed", gen: d.gen, error: "no params", noParams: true });
  const read = d.one("readCheckpoint");
  assert.equal(read.maxStep, 3);
  d.send({ type: "checkpointRead", gen: d.gen, token: read.token, manifest: start, refused: [] });
  const rr = d.one("restoreReducers");
  assert.equal(rr.step, 0);
  d.send({ type: "reducersRestored", gen: d.gen, token: rr.token, addresses: ["c/r0", "c/r1"] });
  const p = d.m.s.p;
  assert.equal(p?.step, 0);
  assert.equal(p?.stepsLost, 3);
  assert.equal(d.m.s.ledger?.committedThisEpoch, 0, "the ledger is back at the start: nothing committed");
});

test("without a complete checkpoint (not even step 0's), a recovery with no trainer fails as before", () => {
  const d = new Driver(["a", "b", "c"], SPEC);
  d.place(["a", "b"]);
  commitStep(d);
  d.kill("a");
  d.kill("b");
  const ab = d.take("abortReducers").at(-1);
  d.send({ type: "reducersAborted", gen: d.gen, ok: [false, false], recovery: ab?.recovery });
  d.take("rebuildReducers");
  d.send({ type: "recoveryFailed", gen: d.gen, error: "no params", noParams: true });
  assert.equal(d.take("readCheckpoint").length, 0);
  assert.equal(d.one("timer").id, "recovery-retry");
});

test("while a member lives, trainers that time out never trigger a restore; three refusals in a row do", () => {
  const { d } = jobAtStep7();
  // b's reducer node dies; a lives but its trainer is slow to answer the fetch.
  d.kill("b");
  const ab = d.take("abortReducers").at(-1);
  d.send({ type: "reducersAborted", gen: d.gen, ok: [true, false], recovery: ab?.recovery });
  const retry = () => {
    d.one("timer");
    d.send({ type: "timer", id: "recovery-retry" });
    const again = d.take("abortReducers").at(-1);
    d.send({ type: "reducersAborted", gen: d.gen, ok: [true, false], recovery: again?.recovery });
  };
  for (let i = 0; i < 5; i++) {
    d.take("rebuildReducers");
    d.send({ type: "recoveryFailed", gen: d.gen, error: "ask timed out", noParams: true, timedOut: true });
    assert.equal(d.take("readCheckpoint").length, 0, `timeout ${i + 1}: no restore while a member lives`);
    retry();
  }
  for (let i = 0; i < 3; i++) {
    d.take("rebuildReducers");
    d.send({ type: "recoveryFailed", gen: d.gen, error: "refused", noParams: true });
    if (i < 2) {
      assert.equal(d.take("readCheckpoint").length, 0, `refusal ${i + 1}`);
      retry();
    }
  }
  assert.equal(d.take("readCheckpoint").length, 1, "the third refusal in a row restores");
});

test("no admission while recovering; a stale joinerFailed stops nothing", () => {
  const d = new Driver(["a", "b", "c"], SPEC, "c"); // the coordinator on c, which hosts no member
  d.place(["a", "b"]);
  for (let i = 0; i < 5; i++) commitStep(d);
  const manifest = checkpoint(d);
  commitStep(d);
  commitStep(d);
  d.kill("a");
  d.kill("b");
  const ab = d.take("abortReducers").at(-1)!;
  d.send({ type: "reducersAborted", gen: d.gen, ok: [false, false], recovery: ab.recovery });
  d.take("rebuildReducers");
  // a comes back while the coordinator is recovering: not admitted yet (its prepare would sync
  // from reducers that are being replaced).
  d.alive.push(nodeInfo("a", "2"));
  d.send({ type: "membership", event: { kind: "joined", node: nodeInfo("a", "2"), epoch: 3 } });
  assert.deepEqual(d.take("admitJoiner"), [], "no admission while recovering");
  d.send({ type: "recoveryFailed", gen: d.gen, error: "no trainer", noParams: true });
  const read = d.one("readCheckpoint");
  d.send({ type: "checkpointRead", gen: d.gen, token: read.token, manifest, refused: [] });
  const rr = d.one("restoreReducers");
  d.send({ type: "reducersRestored", gen: d.gen, token: rr.token, addresses: ["c/r0g1", "c/r1g1"] });
  d.persisted();
  d.tick();
  const again = d.take("admitJoiner");
  assert.deepEqual(
    again.filter((x) => x.node === "a").map((x) => [x.node, x.version, x.restores]),
    [["a", manifest.step, 1]],
    "admitted at the restored version",
  );
  d.send({
    type: "joinerPrepared",
    gen: d.gen,
    node: "a",
    member: member("a"),
    prepared: prepared(),
    restores: 1,
  });
  d.tick();
  assert.deepEqual(
    d.m.s.p?.members.map((x) => x.node),
    ["a"],
  );
  d.take("stopActors");
  // A failure of an admission from before the restore (its prepare timed out long after).
  const ignored = d.m.s.ignored;
  d.send({ type: "joinerFailed", gen: d.gen, node: "a", error: "ask timed out", restores: 0 });
  // And one of this timeline for a node that is a member again by now.
  d.send({ type: "joinerFailed", gen: d.gen, node: "a", error: "ask timed out", restores: 1 });
  assert.deepEqual(d.take("stopActors"), [], "the member's trainer is not stopped");
  assert.equal(d.m.s.ignored - ignored, 2);
});
