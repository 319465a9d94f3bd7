/**
 * The chaos harness with the throughput options on (issue 12): one step of staleness, fp16
 * gradients with error feedback and throughput-balanced shares, all at once, under a seeded
 * plan of the node faults that exercise their recovery paths (a trainer killed mid-step, the
 * coordinator killed, a link cut): every invariant must hold as in the synchronous run.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { scaleTimeout } from "../helpers/index.js";
import { assertChaosPassed, runChaosCli } from "./cli.js";

test(
  "a seeded chaos run with staleness 1, fp16 gradients and balanced shares keeps every invariant",
  { timeout: scaleTimeout(300_000) },
  async (t) => {
    const run = await runChaosCli(t, [
      "--seed",
      "12",
      "--duration",
      "30",
      "--epochs",
      "5",
      "--faults",
      "kill,coordinator,partition",
      "--staleness",
      "1",
      "--compression",
      "fp16",
      "--balance",
      "throughput",
    ]);
    assertChaosPassed(run);
    const { report } = run;
    assert.match(report.replay, /--staleness 1 --compression fp16 --balance throughput/);
    assert.equal(report.stepsLost, 0);
  },
);
