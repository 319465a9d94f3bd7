/**
 * The coordinator's data checks (`actors/coordinator/data-checks.ts`) on virtual time: a job that
 * reads `file://` data asks every live node before placing; a node that lacks the file (or holds
 * other bytes) gets no trainer, is named with its reason in the job record, is asked again every
 * DATA_RECHECK_MS and admitted once it holds the data; stale answers are counted, not taken.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DATA_CHECK_MS, DATA_RECHECK_MS, checkDue } from "../../actors/coordinator/data-checks.js";
import { Driver, member, nodeInfo, prepared, testSpec } from "./coordinator-harness.js";

const URL = "file:///data/train.csv";
const SHA = "a".repeat(64);
const fileSpec = (over: Parameters<typeof testSpec>[0] = {}) =>
  testSpec({ dataset: { source: URL, format: "csv", label: "y" }, dataHashes: { [URL]: SHA }, ...over });
const lacks = "/data/train.csv: this node's copy differs from the submitted file (sha256 aaaaaaaaaaaa…)";

/** Answers every pending `checkData`: the nodes in `refused` with `lacks`, the others with nothing. */
function answer(d: Driver, refused: readonly string[] = []): string[] {
  const asked = d.take("checkData");
  for (const c of asked)
    d.send({
      type: "dataChecked",
      gen: c.gen,
      node: c.node,
      inc: c.inc,
      problems: refused.includes(c.node) ? [lacks] : [],
    });
  return asked.map((c) => c.node);
}

test("a file:// job asks every live node, then places trainers only where the data checks passed", () => {
  const d = new Driver(["a", "b", "c"], fileSpec());
  d.acquireFresh();
  assert.equal(d.take("placeMembers").length, 0, "nothing is placed before the nodes answer");
  d.tick();
  const asked = d.take("checkData");
  assert.deepEqual(
    asked.map((c) => c.node),
    ["a", "b", "c"],
  );
  assert.deepEqual(
    asked[0]?.sources,
    [{ url: URL, kind: "file", sha256: SHA }],
    "the submitter's hash travels",
  );
  d.tick(1000);
  assert.equal(d.take("checkData").length, 0, "a pending check is not asked twice");
  assert.equal(d.take("placeMembers").length, 0, "still waiting for the answers");
  for (const c of asked)
    d.send({
      type: "dataChecked",
      gen: c.gen,
      node: c.node,
      inc: c.inc,
      problems: c.node === "b" ? [lacks] : [],
    });
  d.tick();
  assert.deepEqual(d.one("placeMembers").nodes, ["a", "c"]);
  d.tick(600);
  const record = d.take("writeRecord").at(-1)?.record;
  assert.deepEqual(record?.unplaced, [{ node: "b", reason: lacks }]);
  assert.equal(d.m.s.ignored, 0);
});

test("a refused node is asked again every DATA_RECHECK_MS and joins once it holds the data", () => {
  const d = new Driver(["a", "b", "c"], fileSpec());
  d.acquireFresh();
  d.tick();
  answer(d, ["c"]);
  d.tick();
  const pm = d.one("placeMembers");
  d.send({
    type: "membersPlaced",
    gen: d.gen,
    members: pm.nodes.map((n) => ({ ...member(n), inc: "1" })),
    prepared: pm.nodes.map(() => prepared()),
  });
  const sr = d.one("startReducers");
  d.send({ type: "reducersReady", gen: d.gen, reducers: { addresses: ["a/r0", "b/r1"], bounds: sr.bounds } });
  assert.equal(d.m.phase, "stepping");
  d.tick(DATA_RECHECK_MS - 400);
  assert.equal(d.take("checkData").length, 0, "not before DATA_RECHECK_MS");
  assert.equal(d.take("admitJoiner").length, 0, "c lacks the data: no trainer");
  d.tick(400);
  assert.deepEqual(answer(d, ["c"]), ["c"], "only the refused node is asked again; it still lacks the file");
  d.tick(DATA_RECHECK_MS);
  assert.deepEqual(answer(d), ["c"], "asked again: now it holds the file");
  d.tick();
  assert.equal(d.one("admitJoiner").node, "c");
  d.tick(600);
  assert.equal(d.take("writeRecord").at(-1)?.record.unplaced, undefined, "no node left out");
});

test("a node's new incarnation is checked again; answers of an old incarnation or generation are ignored", () => {
  const d = new Driver(["a", "b"], fileSpec());
  d.acquireFresh();
  d.tick();
  const first = d.take("checkData");
  const b = first.find((c) => c.node === "b");
  assert.ok(b);
  d.alive = [nodeInfo("a"), nodeInfo("b", "2")];
  d.tick();
  assert.deepEqual(
    d.take("checkData").map((c) => [c.node, c.inc]),
    [["b", "2"]],
  );
  d.send({ type: "dataChecked", gen: b.gen, node: "b", inc: "1", problems: [] });
  assert.equal(d.m.s.ignored, 1, "the old incarnation's answer speaks for no live node");
  d.send({ type: "dataChecked", gen: d.gen + 1, node: "b", inc: "2", problems: [] });
  assert.equal(d.m.s.ignored, 2, "an answer of another generation is dropped");
  d.send({ type: "dataChecked", gen: d.gen, node: "a", inc: "1", problems: [] });
  d.send({ type: "dataChecked", gen: d.gen, node: "b", inc: "2", problems: [] });
  d.send({ type: "dataChecked", gen: d.gen, node: "b", inc: "2", problems: [] });
  assert.equal(d.m.s.ignored, 3, "a second answer to one ask is stale");
  d.tick();
  assert.deepEqual(d.one("placeMembers").incs, { a: "1", b: "2" });
});

test("a lost answer is asked again; the pure due rule", () => {
  const pending = { inc: "1", gen: 3, state: "pending" as const, at: 0, problems: [] };
  assert.equal(checkDue(undefined, "1", 0, 3), true);
  assert.equal(checkDue(pending, "1", DATA_CHECK_MS * 2, 3), false);
  assert.equal(checkDue(pending, "1", DATA_CHECK_MS * 2 + 1, 3), true, "lost");
  assert.equal(checkDue(pending, "1", 1, 4), true, "asked under an earlier generation");
  assert.equal(
    checkDue({ ...pending, state: "ok" }, "1", 10 ** 9, 3),
    false,
    "a pass holds for the incarnation",
  );
  assert.equal(checkDue({ ...pending, state: "ok" }, "2", 0, 3), true, "a new incarnation");
  assert.equal(checkDue({ ...pending, state: "refused" }, "1", DATA_RECHECK_MS - 1, 3), false);
  assert.equal(checkDue({ ...pending, state: "refused" }, "1", DATA_RECHECK_MS, 3), true);
});

test("placement that times out names each node's reason; a job without file:// data asks nothing", () => {
  const d = new Driver(["a", "b"], fileSpec());
  d.acquireFresh();
  d.tick();
  answer(d, ["b"]);
  d.tick(60_400);
  const failed = d.published("job.failed")[0]?.event;
  assert.ok(failed?.type === "job.failed");
  assert.match(failed.error, /only 1 node\(s\) with a free slot and the job's data/);
  assert.ok(failed.error.includes(`b: ${lacks}`), failed.error);

  const plain = new Driver(["a", "b"]);
  plain.acquireFresh();
  plain.tick(1000);
  assert.equal(plain.take("checkData").length, 0);
  assert.deepEqual(plain.one("placeMembers").nodes, ["a", "b"]);
});

test("the evaluator goes to a member's node when the coordinator's own node lacks the data", () => {
  const d = new Driver(["a", "b", "c"], fileSpec(), "a");
  d.acquireFresh();
  d.tick();
  answer(d, ["a"]);
  d.tick();
  const pm = d.one("placeMembers");
  assert.deepEqual(pm.nodes, ["b", "c"]);
  d.send({
    type: "membersPlaced",
    gen: d.gen,
    members: pm.nodes.map((n) => ({ ...member(n), inc: "1" })),
    prepared: pm.nodes.map(() => prepared()),
  });
  const sr = d.one("startReducers");
  d.send({ type: "reducersReady", gen: d.gen, reducers: { addresses: ["b/r0", "c/r1"], bounds: sr.bounds } });
  const evaluator = d.take("spawn").find((s) => s.actorKind === "flock.evaluator");
  assert.equal(evaluator?.node, "b");
});
