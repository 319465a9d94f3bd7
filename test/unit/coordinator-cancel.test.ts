/**
 * `coord.cancel` (a client ends a job): the lease holder fails the job through its fail path, with
 * "cancelled by <sender>"; a cancel that names someone other than its sender, or reaches a standby,
 * changes nothing. Pure machine, virtual time.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CoordinatorCommand } from "../../actors/coordinator/protocol.js";
import { Driver } from "./coordinator-harness.js";

const cancel = (by: string) => ({ type: "coord.cancel" as const, by });

test("the holder fails a running job with 'cancelled by <sender>', persists it and tears it down", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  d.out = [];
  d.send({ type: "message", msg: cancel("submitter"), from: "submitter/$anon" });
  assert.equal(d.m.phase, "done");
  const failed = d.published("job.failed");
  assert.equal(failed.length, 1);
  const event = failed[0]?.event;
  assert.equal(event?.type === "job.failed" ? event.error : undefined, "cancelled by submitter");
  const close = d.one("close");
  assert.equal(close.job?.state, "failed");
  assert.equal(close.job?.error, "cancelled by submitter", "the durable record says who cancelled");
  assert.ok(close.stop.includes("a/job-j.trainer"), "the job's actors are stopped");
  d.send({ type: "message", msg: cancel("submitter"), from: "submitter/$anon" });
  assert.equal(d.published("job.failed").length, 1, "a second cancel changes nothing");
});

test("a cancel naming another sender, or reaching a standby, is ignored and counted", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  const ignored = d.m.s.ignored;
  d.send({ type: "message", msg: cancel("submitter"), from: "b/$anon" });
  assert.equal(d.m.phase === "done", false, "b cannot cancel in the submitter's name");
  assert.equal(d.m.s.ignored, ignored + 1);
  const standby = new Driver(["a", "b"], undefined, "b");
  standby.send({ type: "message", msg: cancel("submitter"), from: "submitter/$anon" });
  assert.equal(standby.m.phase, "campaigning");
  assert.equal(standby.published("job.failed").length, 0);
  assert.equal(standby.m.s.ignored, 1);
});

test("the cancel message is schema-checked: a missing or absurd `by` does not decode", () => {
  assert.equal(CoordinatorCommand.safeParse(cancel("submitter")).success, true);
  assert.equal(CoordinatorCommand.safeParse({ type: "coord.cancel" }).success, false);
  assert.equal(CoordinatorCommand.safeParse(cancel("")).success, false);
  assert.equal(CoordinatorCommand.safeParse(cancel("x".repeat(129))).success, false);
  assert.equal(CoordinatorCommand.safeParse({ ...cancel("s"), extra: 1 }).success, false);
});
