import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { scaleTimeout, spawnChild } from "../helpers/index.js";

/** Jobs whose final test accuracy the report carries (each mode's too). */
const ACCURACIES = [
  "oneWorker",
  "oneWorkerStale",
  "oneWorkerLocal",
  "twoWorkers",
  "twoWorkersStrong",
  "staleness",
  "fp16",
  "int8",
  "local",
  "heavyOneWorker",
  "heavyTwoWorkers",
  "balanceEqual",
  "balanceThroughput",
] as const;

const flock = fileURLToPath(new URL("../../bin/flock.js", import.meta.url));

/** Every figure `flock bench` reports; the test checks presence and finiteness, never speed. */
const FIGURES = [
  "tellRatio",
  "askLatencyRatio",
  "reduceWireRatio",
  "trainerOverheadRatio",
  "trainerOverheadRatioStale",
  "trainerOverheadRatioLocal",
  "scaling2",
  "scaling2Strong",
  "rawScaling2",
  "scalingEfficiency",
  "scaling2Heavy",
  "rawScaling2Heavy",
  "scalingEfficiencyHeavy",
  "scaling2Local",
  "stalenessSpeedup",
  "fp16Speedup",
  "int8Speedup",
  "localStepsSpeedup",
  "balanceSpeedup",
  "predictScaling2",
  "recoveryMedianS",
  "failoverS",
  "peakRssMB",
  "cores",
] as const;

test(
  "flock bench --quick --json reports every figure with a finite value",
  { timeout: scaleTimeout(720_000) },
  async (t) => {
    const bench = spawnChild(process.execPath, [flock, "bench", "--quick", "--json"], { name: "bench" });
    t.after(() => bench.stop());
    const exit = await bench.exited;
    assert.equal(exit.code, 0, bench.output());
    const lines = bench
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"));
    assert.ok(lines.length > 0, `no JSON line in the output:\n${bench.output()}`);
    const report = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    for (const key of FIGURES) {
      assert.ok(key in report, `missing ${key}`);
      assert.equal(typeof report[key], "number", `${key} is ${typeof report[key]}`);
      assert.ok(Number.isFinite(report[key]), `${key} = ${String(report[key])}`);
    }
    assert.equal(typeof report.accuracy, "object", "accuracy reported");
    const accuracy = report.accuracy as Record<string, unknown>;
    for (const key of ACCURACIES) {
      // A quick run cancels the heavy jobs after their first steps: they have no final accuracy.
      if (key.startsWith("heavy")) continue;
      const value = accuracy[key];
      assert.ok(typeof value === "number" && value >= 0 && value <= 1, `accuracy.${key} = ${String(value)}`);
    }
    assert.equal(typeof report.backend, "string");
    assert.ok((report.backend as string).length > 0, "backend named");
    assert.ok((report.cores as number) >= 1);
  },
);
