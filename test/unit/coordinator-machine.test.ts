import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeJob, encodeJob } from "../../actors/coordinator/codec.js";
import { buildResult } from "../../actors/coordinator/state.js";
import { ShardLedger } from "../../actors/ledger/ledger.js";
import { Driver, member, nodeInfo, prepared, testSpec } from "./coordinator-harness.js";

function stepsTold(d: Driver): Array<{ to: string; step: number; attempt: number; batchSize: number }> {
  return d
    .told("trainer.step")
    .flatMap((c) =>
      c.msg.type === "trainer.step"
        ? [{ to: c.to, step: c.msg.step, attempt: c.msg.attempt, batchSize: c.msg.batchSize }]
        : [],
    );
}

test("fresh placement waits for minWorkers, then spawns, prepares, places reducers and starts step 1", () => {
  const d = new Driver(["a"]);
  d.acquireFresh();
  assert.equal(d.m.phase, "placing");
  d.tick(1000);
  assert.equal(d.take("placeMembers").length, 0, "one node is below minWorkers=2");
  d.alive.push(nodeInfo("b"));
  d.tick();
  assert.deepEqual(d.one("placeMembers").nodes, ["a", "b"]);
  d.send({
    type: "membersPlaced",
    gen: d.gen,
    members: [member("a"), member("b")],
    prepared: [prepared(), prepared()],
  });
  const sr = d.one("startReducers");
  assert.deepEqual(sr.bounds, [0, 50, 100]);
  assert.deepEqual(
    sr.spawns.map((s) => [s.node, s.name]),
    [
      ["a", "job-j.reducer-0.g0"],
      ["b", "job-j.reducer-1.g0"],
    ],
  );
  assert.equal(sr.source, "a/job-j.trainer");
  assert.equal(d.lease("a", 4).lease, null, "no leases before the job is placed");
  d.send({ type: "reducersReady", gen: d.gen, reducers: { addresses: ["a/r0", "b/r1"], bounds: sr.bounds } });
  assert.equal(d.m.phase, "stepping");
  assert.equal(d.take("persist").length, 1, "the placed job is persisted");
  assert.ok(d.take("spawn").some((s) => s.actorKind === "flock.evaluator"));
  assert.deepEqual(
    stepsTold(d).map((s) => [s.to, s.step, s.attempt, s.batchSize]),
    [
      ["a/job-j.trainer", 1, 0, 4],
      ["b/job-j.trainer", 1, 0, 4],
    ],
  );
  assert.equal(d.published("job.membership").length, 2, "both joins announced");
});

test("placement fails after placementTimeoutMs without enough nodes", () => {
  const d = new Driver(["a"]);
  d.acquireFresh();
  d.tick(60_200);
  assert.equal(d.published("job.failed").length, 1);
  assert.equal(d.m.phase, "done");
  d.one("close");
});

test("trainers that initialised different parameters fail the placement", () => {
  const d = new Driver(["a", "b"]);
  d.acquireFresh();
  d.take("placeMembers");
  d.send({
    type: "membersPlaced",
    gen: d.gen,
    members: [member("a"), member("b")],
    prepared: [prepared("x"), prepared("y")],
  });
  assert.equal(d.m.phase, "done");
  assert.match(String(d.published("job.failed")[0]?.event.type), /job.failed/);
});

test("a normal step: commit only after the last write is durable, announce only after its own write", () => {
  const d = new Driver(["a", "b"]);
  d.acquireFresh();
  d.take("placeMembers");
  d.send({
    type: "membersPlaced",
    gen: d.gen,
    members: [member("a"), member("b")],
    prepared: [prepared(), prepared()],
  });
  const sr = d.one("startReducers");
  d.send({ type: "reducersReady", gen: d.gen, reducers: { addresses: ["a/r0", "b/r1"], bounds: sr.bounds } });
  const placedWrite = d.one("persist");
  d.done("a");
  d.done("b");
  assert.equal(d.m.phase, "committing");
  assert.equal(d.told("reducer.commit").length, 0, "commit 1 waits for the placement's write");
  d.send({ type: "persisted", gen: d.gen, seq: placedWrite.seq });
  const commits = d.take("tell").filter((c) => c.msg.type === "reducer.commit");
  assert.equal(commits.length, 2);
  d.out.push(...commits);
  d.applyAll();
  assert.equal(d.m.s.p?.step, 1);
  assert.equal(d.m.s.ledger?.committedThisEpoch, 8, "the ledger marks both batches done");
  assert.equal(d.published("job.step").length, 0, "not announced before durable");
  const w = d.one("persist");
  assert.equal(w.job.step, 1);
  d.send({ type: "persisted", gen: d.gen, seq: w.seq });
  const steps = d.published("job.step");
  assert.equal(steps.length, 1);
  assert.equal(steps[0]?.event.type === "job.step" && steps[0].event.samples, 8);
  assert.deepEqual(
    stepsTold(d).map((s) => s.step),
    [2, 2],
  );
});

test("a failed state write fails the next commit", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  d.done("a");
  d.done("b");
  d.applyAll();
  const w = d.one("persist");
  d.send({ type: "persistFailed", gen: d.gen, seq: w.seq, fenced: false, error: "503" });
  assert.equal(d.m.phase, "stepping");
  d.done("a");
  d.done("b");
  assert.equal(d.m.phase, "done");
  assert.equal(d.published("job.failed").length, 1);
});

test("a straggler is left out at its deadline and its late batch returns to the pool", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  d.done("a");
  const late = d.batch("b", 4);
  d.tick(2000);
  assert.equal(d.m.phase, "stepping", "patience is 2 s before any step time is known");
  d.tick(200);
  assert.equal(d.m.phase, "committing");
  const commit = d.told("reducer.commit")[0];
  assert.ok(commit?.msg.type === "reducer.commit");
  assert.deepEqual(commit.msg.contributors, ["a"]);
  assert.ok(
    d
      .published("job.membership")
      .some((p) => p.event.type === "job.membership" && p.event.event.kind === "straggler"),
  );
  const s = d.m.s;
  d.send({
    type: "message",
    msg: {
      type: "coord.done",
      term: s.term,
      step: 1,
      attempt: 0,
      member: "b",
      batch: late,
      n: 4,
      lossSum: 1,
      computeMs: 1,
    },
    from: "b/j.trainer",
  });
  assert.deepEqual(
    d.m.s.ledger?.snapshot().pool,
    [[late.start, late.end]],
    "its positions are pending again",
  );
});

test("a member's death mid-step finishes the step with the survivors", () => {
  const d = new Driver(["a", "b", "c"], testSpec({ minWorkers: 2 }));
  d.place(["a", "b", "c"]);
  d.done("a");
  d.done("b");
  d.lease("c", 2);
  d.kill("c");
  assert.equal(d.m.phase, "committing");
  assert.deepEqual(
    d.m.s.p?.members.map((x) => x.node),
    ["a", "b"],
  );
  assert.equal(d.m.s.ledger?.outstanding()["c"], undefined, "the dead member's lease is revoked");
  d.applyAll();
  const w = d.one("persist");
  d.send({ type: "persisted", gen: d.gen, seq: w.seq });
  const death = d
    .published("job.membership")
    .find((p) => p.event.type === "job.membership" && p.event.event.kind === "death");
  assert.ok(
    death?.event.type === "job.membership" && death.event.event.recoverySeconds !== undefined,
    "announced once recovered",
  );
});

test("a contributor's death while committing aborts and redoes the step with a new attempt", () => {
  const d = new Driver(["a", "b", "c"]);
  d.place(["a", "b", "c"]);
  d.done("a");
  d.done("b");
  d.done("c");
  d.take("tell");
  d.kill("c");
  assert.equal(d.m.phase, "recovering");
  const ab = d.one("abortReducers");
  assert.equal(ab.recovery, undefined);
  assert.equal(d.m.s.attempt, 1);
  assert.equal(d.m.s.ledger?.committedThisEpoch, 0);
  d.send({ type: "reducersAborted", gen: d.gen, ok: [true, true] });
  assert.deepEqual(
    stepsTold(d).map((s) => [s.to, s.step, s.attempt]),
    [
      ["a/job-j.trainer", 1, 1],
      ["b/job-j.trainer", 1, 1],
    ],
  );
});

test("a reducer node's death rebuilds its reducer from a live trainer and redoes the step", () => {
  const d = new Driver(["a", "b", "c"]);
  d.place(["a", "b", "c"]);
  d.take("tell");
  d.done("a");
  d.kill("b");
  assert.equal(d.m.phase, "recovering");
  const ab = d.one("abortReducers");
  assert.equal(ab.targets[1], null, "the dead node's reducer is not asked");
  assert.ok(ab.recovery);
  d.send({ type: "reducersAborted", gen: d.gen, ok: [true, false], recovery: ab.recovery });
  const rb = d.one("rebuildReducers");
  assert.deepEqual(rb.spawns, [{ r: 1, node: "c", name: "job-j.reducer-1.g1" }]);
  assert.deepEqual(rb.trainers, ["a/job-j.trainer", "c/job-j.trainer"]);
  d.send({ type: "reducersRebuilt", gen: d.gen, addresses: ["a/r0", "c/r1g1"], replaced: 1, reducerGen: 1 });
  assert.equal(d.m.s.p?.reducerGen, 1);
  const told = stepsTold(d);
  assert.deepEqual(
    told.map((s) => [s.to, s.attempt]),
    [
      ["a/job-j.trainer", 1],
      ["c/job-j.trainer", 1],
    ],
  );
});

test("recovery that keeps failing fails the job after 20 retries", () => {
  const d = new Driver(["a", "b"], testSpec({ minWorkers: 1 }));
  d.place(["a", "b"]);
  d.kill("b");
  for (let i = 0; i < 21; i++) {
    d.take("abortReducers");
    d.send({ type: "recoveryFailed", gen: d.gen, error: "no" });
    if (i < 20) {
      assert.equal(d.one("timer").ms, 500);
      d.send({ type: "timer", id: "recovery-retry" });
    }
  }
  assert.equal(d.m.phase, "done");
});

test("a joiner is admitted at a step boundary", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  d.alive.push(nodeInfo("c"));
  d.tick();
  const adm = d.one("admitJoiner");
  assert.equal(adm.node, "c");
  d.tick();
  assert.equal(d.take("admitJoiner").length, 0, "one admission at a time per node");
  d.send({
    type: "joinerPrepared",
    gen: d.gen,
    node: "c",
    member: member("c"),
    prepared: prepared("h", "wasm"),
    restores: 0,
  });
  d.done("a");
  d.done("b");
  d.applyAll();
  assert.deepEqual(
    stepsTold(d).map((s) => [s.to, s.step]),
    [
      ["a/job-j.trainer", 2],
      ["b/job-j.trainer", 2],
      ["c/job-j.trainer", 2],
    ],
  );
  assert.deepEqual(d.m.s.p?.backends, ["cpu", "wasm"]);
});

test("below minWorkers the job pauses; a node joining resumes it", () => {
  const d = new Driver(["a", "b"], testSpec({ reducers: 1 }));
  d.place(["a", "b"]);
  d.take("tell");
  d.kill("b");
  assert.equal(d.m.phase, "paused");
  assert.equal(stepsTold(d).length, 0);
  d.alive.push(nodeInfo("d"));
  d.send({ type: "membership", event: { kind: "joined", node: nodeInfo("d"), epoch: 3 } });
  d.send({
    type: "joinerPrepared",
    gen: d.gen,
    node: "d",
    member: member("d"),
    prepared: prepared(),
    restores: 0,
  });
  assert.equal(d.m.phase, "stepping");
  assert.deepEqual(
    stepsTold(d).map((s) => s.to),
    ["a/job-j.trainer", "d/job-j.trainer"],
  );
});

test("a takeover restores the record, removes dead members, redoes the step in flight and replays the last step", () => {
  const old = new Driver(["a", "b", "c"]);
  old.place(["a", "b", "c"]);
  for (const n of ["a", "b", "c"]) old.done(n, 2);
  old.applyAll();
  const w = old.one("persist");
  const saved = decodeJob(encodeJob(w.job));
  const d = new Driver(["b", "c"], testSpec(), "b");
  d.send({ type: "acquired", term: 9 });
  d.send({ type: "claimed", gen: d.gen, saved });
  const replay = d.published("job.step")[0];
  assert.ok(replay?.event.type === "job.step" && replay.event.replay === true && replay.event.step === 1);
  assert.deepEqual(
    d.m.s.p?.members.map((x) => x.node),
    ["b", "c"],
    "a is not alive",
  );
  assert.equal(d.m.s.p?.term, 9);
  const ab = d.one("abortReducers");
  assert.equal(ab.targets[0], null, "reducer 0 was on a");
  assert.ok(ab.recovery?.releaseOrphans);
  d.send({ type: "reducersAborted", gen: d.gen, ok: [false, true], recovery: ab.recovery });
  const rb = d.one("rebuildReducers");
  d.send({
    type: "reducersRebuilt",
    gen: d.gen,
    addresses: ["b/r0g1", "b/r1"],
    replaced: rb.spawns.length,
    reducerGen: 1,
  });
  const told = stepsTold(d);
  assert.deepEqual(
    told.map((s) => [s.to, s.step, s.attempt]),
    [
      ["b/job-j.trainer", 2, 9001],
      ["c/job-j.trainer", 2, 9001],
    ],
    "attempts of the new term start at term*1000",
  );
  assert.ok(d.m.s.p?.membership.some((r) => r.kind === "failover"));
});

test("an ended job's standby stands down", () => {
  const old = new Driver(["a", "b"]);
  old.place(["a", "b"]);
  const p = old.m.s.p!;
  const result = buildResult(p, ShardLedger.restore(p.ledger), "completed", { loss: 0.2, accuracy: 0.9 }, 0);
  const saved = decodeJob(encodeJob({ ...p, state: "finished", result }));
  const d = new Driver(["a", "b"], testSpec(), "b");
  d.send({ type: "acquired", term: 3 });
  d.send({ type: "claimed", gen: d.gen, saved });
  assert.equal(d.m.phase, "done");
  assert.equal(d.published("job.finished").length, 1);
  d.one("stop");
});

test("a failed job's standby stands down with job.failed and the persisted error", () => {
  const old = new Driver(["a", "b"]);
  old.place(["a", "b"]);
  const saved = decodeJob(encodeJob({ ...old.m.s.p!, state: "failed", error: "placement failed: boom" }));
  const d = new Driver(["a", "b"], testSpec(), "b");
  d.send({ type: "acquired", term: 3 });
  d.send({ type: "claimed", gen: d.gen, saved });
  assert.equal(d.m.phase, "done");
  assert.equal(d.published("job.finished").length, 0);
  assert.deepEqual(
    d.published("job.failed").map((c) => c.event.type === "job.failed" && c.event.error),
    ["placement failed: boom"],
  );
  d.one("stop");
});

test("a takeover drops a member whose node restarted (alive, but another incarnation) as dead", () => {
  const old = new Driver(["a", "b", "c"]);
  old.place(["a", "b", "c"]);
  const saved = decodeJob(encodeJob(old.m.s.p!));
  assert.equal(
    saved.members.find((x) => x.node === "c")?.inc,
    "1",
    "the record keeps each member's incarnation",
  );
  const d = new Driver(["a", "b", "c"], testSpec(), "b");
  d.alive = [nodeInfo("a"), nodeInfo("b"), nodeInfo("c", "2")];
  d.send({ type: "acquired", term: 4 });
  d.send({ type: "claimed", gen: d.gen, saved });
  assert.deepEqual(
    d.m.s.p?.members.map((x) => x.node),
    ["a", "b"],
    "c's trainer died with its old incarnation",
  );
  const death = d.m.s.p?.membership.find((r) => r.kind === "death" && r.node === "c");
  assert.equal(death?.detail, "incarnation 1 replaced by 2 at takeover");
});

test("a member whose node restarted unseen is dropped at the next tick; the step commits with the survivors", () => {
  const d = new Driver(["a", "b", "c"]);
  d.place(["a", "b", "c"]);
  d.done("a");
  d.done("b");
  // c restarts and only its new incarnation is heard of (its death went unseen): c stays a member until the tick.
  d.alive = [nodeInfo("a"), nodeInfo("b"), nodeInfo("c", "2")];
  d.send({ type: "membership", event: { kind: "joined", node: nodeInfo("c", "2"), epoch: 3 } });
  assert.equal(d.take("admitJoiner").length, 0, "a member is not admitted again");
  assert.deepEqual(d.told("reducer.commit"), [], "no commit while c is a member");
  d.tick();
  assert.deepEqual(
    d.m.s.p?.members.map((x) => x.node),
    ["a", "b"],
  );
  const commits = d.out.filter((c) => c.kind === "tell" && c.msg.type === "reducer.commit");
  assert.equal(commits.length, 2, "the step commits with the survivors");
  for (const c of commits)
    assert.ok(c.kind === "tell" && c.msg.type === "reducer.commit" && c.msg.contributors.join() === "a,b");
  d.applyAll();
  d.persisted();
  d.tick();
  const join = d.take("admitJoiner");
  assert.deepEqual(
    join.map((j) => [j.node, j.inc]),
    [["c", "2"]],
    "c's new incarnation is admitted as a joiner",
  );
});

test("a suspect member (missing from the live nodes, no death yet) stays a member on a tick", () => {
  const d = new Driver(["a", "b", "c"]);
  d.place(["a", "b", "c"]);
  d.alive = [nodeInfo("a"), nodeInfo("b")]; // c is suspect: a slow link, not a death
  d.tick();
  assert.deepEqual(
    d.m.s.p?.members.map((x) => x.node),
    ["a", "b", "c"],
  );
  assert.equal(
    d.m.s.p?.membership.some((r) => r.kind === "death"),
    false,
  );
});

test("a lost lease stops acting at once and drops results of earlier work", () => {
  const d = new Driver(["a", "b", "c"], testSpec({ maxWorkers: 4 }));
  d.place(["a", "b", "c"]);
  d.done("a");
  d.alive.push(nodeInfo("d"));
  d.tick();
  const adm = d.one("admitJoiner");
  const oldGen = d.gen;
  d.send({ type: "leaseLost", reason: "renewal failed" });
  assert.equal(d.m.phase, "campaigning");
  assert.equal(d.gen, oldGen + 1);
  d.take("tell");
  d.done("b", 0);
  d.send({
    type: "joinerPrepared",
    gen: adm.gen,
    node: "d",
    member: member("d"),
    prepared: prepared(),
    restores: 0,
  });
  assert.equal(d.m.s.readyJoiners.length, 0, "an admission of the lost term is dropped");
  d.send({ type: "membership", event: { kind: "dead", node: nodeInfo("c"), epoch: 4 } });
  d.tick(10_000);
  assert.equal(d.take("tell").length, 0, "nothing is sent without the lease");
  assert.equal(d.take("abortReducers").length, 0);
  assert.equal(d.lease("a", 4).lease, null);
  assert.equal(d.m.s.joining.size, 0, "admissions in flight are forgotten");
});

test("a durable step is announced even after the lease was lost", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  d.done("a");
  d.done("b");
  d.applyAll();
  const w = d.one("persist");
  d.send({ type: "leaseLost", reason: "x" });
  d.send({ type: "persisted", gen: w.gen, seq: w.seq });
  assert.equal(d.published("job.step").length, 1);
});

test("a fenced state write deposes the holder", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  d.done("a");
  d.done("b");
  d.applyAll();
  const w = d.one("persist");
  d.send({ type: "persistFailed", gen: w.gen, seq: w.seq, fenced: true, error: "fenced" });
  assert.equal(d.m.phase, "campaigning");
  assert.equal(d.published("job.step").length, 0);
  assert.equal(d.published("job.failed").length, 0);
});

test("a commit not applied within 4 s is aborted and redone", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  d.done("a");
  d.done("b");
  assert.equal(d.told("reducer.commit").length, 2);
  d.tick(4000);
  assert.equal(d.take("abortReducers").length, 0);
  d.tick(200);
  d.one("abortReducers");
  assert.equal(d.m.s.attempt, 1);
  assert.deepEqual(d.m.s.ledger?.snapshot().pool, [[0, 8]], "both batches return to the pool");
});

test("a silent step is started again after stepDeadlineMs", () => {
  const d = new Driver(["a", "b"], testSpec({ stepDeadlineMs: 3000 }));
  d.place(["a", "b"]);
  d.take("tell");
  d.tick(3200);
  assert.deepEqual(
    stepsTold(d).map((s) => s.attempt),
    [1, 1],
  );
});

test("finishing: the final evaluation completes the job with its result", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  const ev = d.take("spawn").find((s) => s.actorKind === "flock.evaluator");
  assert.ok(ev);
  d.send({ type: "spawned", gen: d.gen, purpose: ev.purpose, address: "a/eval" });
  for (let step = 1; step <= 4; step++) {
    d.done("a");
    d.done("b");
    d.applyAll();
    d.persisted();
  }
  assert.equal(d.m.phase, "finishing");
  const evals = d.told("evaluator.eval");
  assert.equal(evals.length, 1);
  assert.ok(evals[0]?.msg.type === "evaluator.eval" && evals[0].msg.version === 4);
  assert.equal(d.take("timer")[0]?.ms, 30_000);
  d.send({
    type: "message",
    msg: { type: "coord.evaluated", term: d.m.s.term, version: 4, loss: 0.25, accuracy: 0.9, n: 10 },
  });
  assert.equal(d.m.phase, "done");
  const fin = d.published("job.finished")[0];
  assert.ok(fin?.event.type === "job.finished");
  assert.equal(fin.event.result["status"], "completed");
  assert.equal(fin.event.result["steps"], 4);
  assert.equal(fin.event.result["accuracy"], 0.9);
  assert.deepEqual(fin.event.result["samplesPerEpoch"], [32]);
  const close = d.one("close");
  assert.equal(close.job?.state, "finished");
  assert.ok(close.stop.includes("a/eval"));
  d.send({ type: "closed", gen: close.gen });
  d.one("stop");
});

test("a standby is kept on another live node and replaced when its node restarts", () => {
  const d = new Driver(["a", "b", "c"]);
  d.place(["a", "b", "c"]);
  const sb = d.take("spawn").find((s) => s.actorKind === "flock.coordinator");
  assert.equal(sb?.node, "b");
  d.send({ type: "spawned", gen: d.gen, purpose: sb.purpose, address: "b/coord" });
  d.tick();
  assert.equal(d.take("spawn").length, 0);
  d.alive = [nodeInfo("a"), nodeInfo("b", "2"), nodeInfo("c")];
  d.tick();
  const again = d.take("spawn").find((s) => s.actorKind === "flock.coordinator");
  assert.equal(again?.node, "b", "the new incarnation gets a new standby");
  d.send({ type: "spawnFailed", gen: d.gen, purpose: again.purpose, error: "x" });
  d.tick();
  assert.equal(d.take("spawn").length, 0, "retried only after 2 s");
  d.tick(2000);
  assert.equal(d.take("spawn").filter((s) => s.actorKind === "flock.coordinator").length, 1);
});

test("stale and foreign messages are ignored and counted", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  const before = d.m.s.ignored;
  d.send({
    type: "message",
    msg: { type: "coord.applied", term: 1, step: 1, attempt: 0, r: 0, summed: [], n: 0 },
  });
  d.send({
    type: "message",
    msg: {
      type: "coord.done",
      term: 1,
      step: 1,
      attempt: 0,
      member: "zz",
      batch: null,
      n: 0,
      lossSum: 0,
      computeMs: 0,
    },
  });
  assert.equal(d.m.s.ignored, before + 2);
  assert.equal(d.m.phase, "stepping");
});

test("a member speaks only for itself: another node's step report, lease or acknowledgement is ignored", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  const s = d.m.s;
  const before = s.ignored;
  const commits = () => d.out.filter((c) => c.kind === "tell" && c.msg.type === "reducer.commit").length;
  const report = (member: string, from: string | undefined): void =>
    void d.send({
      type: "message",
      msg: {
        type: "coord.done",
        term: s.term,
        step: (s.p?.step ?? 0) + 1,
        attempt: s.attempt,
        member,
        batch: null,
        n: 0,
        lossSum: 0,
        computeMs: 0,
      },
      from,
    });
  // Node b reports for a (and a local tell, which comes from this node a, reports for b).
  report("a", "b/j.trainer");
  report("b", undefined);
  d.send({
    type: "message",
    msg: { type: "coord.lease", term: s.term, member: "a", count: 4 },
    from: "b/$ask",
  });
  assert.equal(d.take("reply").length, 0, "no lease handed to b in a's name");
  const reducers = s.p!.reducers.addresses;
  const foreign = reducers.findIndex((addr) => !addr.startsWith("b/"));
  assert.ok(foreign >= 0, `a reducer not on b among ${reducers.join(", ")}`);
  d.send({
    type: "message",
    msg: { type: "coord.applied", term: s.term, step: 1, attempt: 0, r: foreign, summed: [], n: 0 },
    from: "b/x",
  });
  d.send({
    type: "message",
    msg: { type: "coord.applied", term: s.term, step: 1, attempt: 0, r: reducers.length, summed: [], n: 0 },
    from: "b/x",
  });
  assert.equal(s.ignored, before + 5);
  assert.equal(commits(), 0, "no commit from forged reports");
  // The members' own reports still count: the step commits once its record is durable.
  d.done("a");
  d.done("b");
  d.persisted();
  assert.ok(commits() > 0, "their own reports drive the step to its commit");
});
