/**
 * The harness must notice a broken build: with `--inject-bug reducer-keeps-dead-slices` the harness
 * starts its daemons from the test entry point `tools/chaos/faulty-daemon.ts`, whose reducers sum
 * every buffered slice, including a straggler's that the step's commit set left out.
 * A slowed link makes a node a straggler (its slice reaches the reducer on its own node at once,
 * its "done" reaches the coordinator too late), so the run must fail, naming the commit audit.
 *
 * Four slow faults, because one is not always a straggler: the coordinator's patience is
 * max(2 s, 5 × its step-time average), which the slow steps themselves raise. Seed 26 slows node-3
 * each time, not node-2, which hosts the standby coordinator: a standby behind a slow link sees
 * the active coordinator die and takes its lease, which is its own bug, not this test's subject.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { scaleTimeout } from "../helpers/index.js";
import { runChaosCli } from "./cli.js";

test(
  "a reducer that sums slices outside the commit set fails the run on the commit audit",
  { timeout: scaleTimeout(240_000) },
  async (t) => {
    const args = ["--inject-bug", "reducer-keeps-dead-slices"];
    args.push("--seed", "26", "--faults", "slow", "--duration", "40", "--epochs", "2");
    const { code, report, output } = await runChaosCli(t, args);
    assert.equal(report.passed, false, `the harness passed a broken build:\n${output.slice(-6000)}`);
    assert.equal(code, 1);
    const audit = report.invariants.commitAudit;
    assert.equal(audit.ok, false, `commit audit: ${audit.detail}`);
    assert.match(
      audit.detail,
      /^commit audit: \d+ reducer application\(s\) summed other slices than the step's commit set/,
    );
    assert.match(report.replay, /^npx flock chaos --inject-bug reducer-keeps-dead-slices --seed 26 /);
    assert.match(output, /flock chaos FAILED with seed 26; replay with:/);
  },
);
