import assert from "node:assert/strict";
import { test } from "node:test";
import { Packr } from "msgpackr";
import { JobStateDecodeError, decodeJob, encodeJob } from "../../actors/coordinator/codec.js";
import {
  agreedInit,
  batchShares,
  candidates,
  freshJob,
  reducerLayout,
} from "../../actors/coordinator/placement.js";
import { planRebuild } from "../../actors/coordinator/recovery.js";
import { Driver, member, nodeInfo, prepared, testSpec } from "./coordinator-harness.js";

test("reducer count: spec.reducers, else min(4, maxWorkers), never above the parameter count; bounds split evenly", () => {
  assert.deepEqual(reducerLayout(testSpec({ reducers: 3 }), 10, ["a", "b"]), {
    bounds: [0, 3, 7, 10],
    nodes: ["a", "b", "a"],
  });
  assert.equal(reducerLayout(testSpec({ reducers: undefined, maxWorkers: 8 }), 1000, ["a"]).nodes.length, 4);
  assert.equal(reducerLayout(testSpec({ reducers: undefined, maxWorkers: 3 }), 1000, ["a"]).nodes.length, 3);
  assert.deepEqual(reducerLayout(testSpec({ reducers: 8 }), 2, ["a"]).bounds, [0, 1, 2]);
});

test("candidates: alive with a free slot, not excluded, sorted", () => {
  const alive = [nodeInfo("c"), nodeInfo("a"), nodeInfo("b", "1", 0), nodeInfo("d")];
  assert.deepEqual(candidates(alive, ["d"]), ["a", "c"]);
});

test("initial parameters must agree", () => {
  assert.equal(agreedInit([prepared("x"), prepared("x")]).hash, "x");
  assert.throws(() => agreedInit([prepared("x"), prepared("y")]), /different parameters: x, y/);
  assert.throws(() => agreedInit([]));
});

test("batch shares split globalBatch over members sorted by node, the remainder to the first", () => {
  const shares = batchShares([member("c"), member("a"), member("b")], 10);
  assert.deepEqual(
    shares.map((s) => [s.member.node, s.size]),
    [
      ["a", 4],
      ["b", 3],
      ["c", 3],
    ],
  );
});

test("rebuild plan: lost reducers go round-robin on live members; parameters from members first, then other live nodes", () => {
  const p = freshJob("j", testSpec(), 1, 0);
  p.members = [member("a"), member("b"), member("x")];
  const plan = planRebuild(p, ["a", "b", "z"], [1, 2], 3);
  assert.deepEqual(plan.spawns, [
    { r: 1, node: "b", name: "job-j.reducer-1.g3" },
    { r: 2, node: "b", name: "job-j.reducer-2.g3" },
  ]);
  assert.deepEqual(plan.trainers, ["a/job-j.trainer", "b/job-j.trainer", "z/job-j.trainer"]);
  p.members = [member("x")];
  assert.deepEqual(planRebuild(p, ["q"], [0], 1).spawns, [{ r: 0, node: "q", name: "job-j.reducer-0.g1" }]);
  assert.throws(() => planRebuild(p, [], [0], 1), /no live trainer/);
  assert.deepEqual(planRebuild(p, [], [], 1), { spawns: [], trainers: [] });
});

test("the persisted job round-trips through the codec (NaN loss, ledger bytes, step event)", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  d.done("a");
  d.done("b");
  d.applyAll();
  const job = d.one("persist").job;
  const back = decodeJob(encodeJob(job));
  assert.equal(back.step, 1);
  assert.deepEqual(back.members, job.members);
  assert.deepEqual([...back.ledger.counts], [...job.ledger.counts]);
  assert.equal(back.lastStepEvent?.type, "job.step");
  assert.ok(Number.isNaN(decodeJob(encodeJob(freshJob("j", testSpec(), 1, 0))).lastLoss));
});

test("an undecodable job record is a clear error", () => {
  const packr = new Packr({ useRecords: false, moreTypes: true });
  assert.throws(() => decodeJob(packr.pack({ job: "j", step: "three" })), JobStateDecodeError);
  assert.throws(() => decodeJob(packr.pack({ job: "j", step: "three" })), /does not decode: .*spec/);
  assert.throws(() => decodeJob(new Uint8Array([0xc1])), JobStateDecodeError);
});
