/**
 * The chaos harness with the throughput options on (issue 12), so every mode runs under chaos at
 * least once: one step of staleness with fp16 gradients, then local steps (DiLoCo rounds) with
 * int8 — each with throughput-balanced shares — under a seeded plan of the node faults that
 * exercise their recovery paths (a trainer killed mid-step or mid-round, the coordinator killed,
 * a link cut): every invariant must hold as in the synchronous run.
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

test(
  "a seeded chaos run with local steps (4 a round), int8 gradients and balanced shares keeps every invariant",
  { timeout: scaleTimeout(300_000) },
  async (t) => {
    const run = await runChaosCli(t, [
      "--seed",
      "13",
      "--duration",
      "30",
      "--epochs",
      "8",
      "--faults",
      "kill,coordinator,partition",
      "--local-steps",
      "4",
      "--compression",
      "int8",
      "--balance",
      "throughput",
    ]);
    assertChaosPassed(run);
    const { report } = run;
    assert.match(report.replay, /--local-steps 4 --compression int8 --balance throughput/);
    assert.equal(report.stepsLost, 0);
  },
);
