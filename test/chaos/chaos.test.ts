/**
 * The chaos harness end to end, as CI runs it: `flock chaos` with a fixed seed, every fault kind
 * that some process outlives at least once (seed 7: coordinator, coordinator-pause, partition,
 * kill, pause, slow, broker), a fault-free baseline first; it must pass every invariant, and lose
 * no committed step. About two and a half minutes on two cores. The faults that nothing outlives
 * (total, jetstream-outage) have their own, shorter scenario: durability.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { NODE_FAULT_KINDS } from "../../tools/chaos/schedule.js";
import { scaleTimeout } from "../helpers/index.js";
import { assertChaosPassed, runChaosCli } from "./cli.js";

test(
  "a seeded chaos run with every fault kind keeps every invariant",
  { timeout: scaleTimeout(360_000) },
  async (t) => {
    const run = await runChaosCli(t, [
      "--seed",
      "7",
      "--duration",
      "60",
      "--epochs",
      "10",
      "--faults",
      NODE_FAULT_KINDS.join(","),
    ]);
    assertChaosPassed(run);
    const { report } = run;
    for (const kind of NODE_FAULT_KINDS)
      assert.ok(
        report.faults.some((f) => f.kind === kind),
        `a ${kind} fault was injected`,
      );
    assert.ok(
      report.faults.every((f) => f.recoverySeconds !== null),
      "every fault was followed by committed steps",
    );
    assert.equal(typeof report.recoveryP50, "number");
    assert.equal(report.stepsLost, 0, "no committed step lost while a process held the parameters");
    assert.ok(report.accuracy !== null && report.baselineAccuracy !== null);
    assert.ok(Math.abs(report.accuracy - report.baselineAccuracy) <= report.tolerance);
  },
);
