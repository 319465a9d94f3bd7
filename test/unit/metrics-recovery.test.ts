/**
 * Recovery from the kill (tools/report/recovery.ts): the harness's kill time, the coordinator's
 * record of the loss and its own record → commit figure give kill → detection → next commit.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  describeKillRecovery,
  lossOfKill,
  recoveryFromKill,
  withKillTimes,
  type LossRecord,
} from "../../tools/report/recovery.js";

const T0 = 1_700_000_000_000;

test("the demo's kill: 1.7 s to detect, 0.09 s to commit is a 1.79 s recovery", () => {
  const records: LossRecord[] = [
    { kind: "join", node: "node-3", at: T0 - 5000 },
    { kind: "death", node: "node-3", at: T0 + 1700, recoverySeconds: 0.09 },
  ];
  const r = recoveryFromKill({ node: "node-3", at: T0 }, records);
  assert.equal(r.detectionSeconds, 1.7);
  assert.equal(r.afterDetectionSeconds, 0.09);
  assert.ok(Math.abs(r.killToCommitSeconds! - 1.79) < 1e-9);
  assert.equal(
    describeKillRecovery(r),
    "1.79 s from the kill of node-3 to the next commit (detected after 1.70 s, then 0.09 s to commit)",
  );
});

test("the record a kill caused: the killed node's loss after the kill and before the next fault, else a takeover", () => {
  const records: LossRecord[] = [
    { kind: "death", node: "b", at: T0 - 10 }, // before the kill: an earlier fault's
    { kind: "death", node: "c", at: T0 + 500 }, // another node's
    { kind: "failover", node: "c", at: T0 + 2600, recoverySeconds: 0.4 },
    { kind: "death", node: "b", at: T0 + 9000, recoverySeconds: 0.2 }, // after the next fault
  ];
  assert.equal(
    lossOfKill({ node: "b", at: T0 }, records, T0 + 8000),
    records[2],
    "the coordinator's takeover",
  );
  assert.equal(lossOfKill({ node: "b", at: T0 }, records), records[3]);
  assert.equal(lossOfKill({ node: "a", at: T0 + 10_000 }, records), undefined);
  assert.deepEqual(recoveryFromKill({ node: "a", at: T0 + 10_000 }, records), { node: "a" });
  assert.equal(describeKillRecovery({ node: "a" }), "a: no loss recorded");
  const noCommit = recoveryFromKill({ node: "x", at: T0 }, [{ kind: "leave", node: "x", at: T0 + 250 }]);
  assert.deepEqual(noCommit, { node: "x", detectionSeconds: 0.25 });
  assert.equal(describeKillRecovery(noCommit), "x: detected after 0.25 s, no commit since");
});

test("the report's events carry kill → commit on the records the kills caused, each kill its own", () => {
  const events = [
    { t: 3, step: 10, kind: "death", node: "n3", at: T0 + 1500, recoverySeconds: 0.1 },
    { t: 6, step: 40, kind: "join", node: "n3", at: T0 + 4000 },
    { t: 9, step: 70, kind: "death", node: "n3", at: T0 + 9100, recoverySeconds: 0.3 },
  ];
  const out = withKillTimes(events, [
    { node: "n3", at: T0 },
    { node: "n3", at: T0 + 8000 },
  ]);
  assert.equal(out[0]!.detectionSeconds, 1.5);
  assert.ok(Math.abs(out[0]!.killToCommitSeconds! - 1.6) < 1e-9);
  assert.equal(out[1]!.killToCommitSeconds, undefined, "a join is no loss");
  assert.ok(Math.abs(out[2]!.killToCommitSeconds! - 1.4) < 1e-9);
  assert.equal(events[0]!.recoverySeconds, 0.1);
  assert.ok(!("killToCommitSeconds" in events[0]!), "the input is not changed");
});
