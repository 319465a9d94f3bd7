/**
 * Joiners around a restore (found in review): a node that comes back while the coordinator is
 * recovering is admitted only once the recovery is over, and a failure of an admission issued
 * before a restore never stops the trainer a later admission placed on that node.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { CheckpointManifest } from "../../actors/coordinator/manifest.js";
import { Driver, member, nodeInfo, prepared, testSpec } from "./coordinator-harness.js";

const SPEC = testSpec({ epochs: 3, checkpointEvery: 5, keepCheckpoints: 2, maxWorkers: 2 });
function commitStep(d: Driver): void {
  for (const x of d.m.s.p?.members ?? []) d.done(x.node);
  d.applyAll();
  d.persisted();
}
function checkpoint(d: Driver): CheckpointManifest {
  const asks = d.told("reducer.checkpoint");
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

test("no admission while recovering; a stale joinerFailed stops nothing", () => {
  const d = new Driver(["a", "b", "c"], SPEC, "c");
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
