import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { scaleTimeout, spawnChild } from "../helpers/index.js";

const flock = fileURLToPath(new URL("../../bin/flock.js", import.meta.url));

test(
  "npm start's demo: three daemons, one killed and restarted, the job resizes and finishes ≥ 0.90",
  { timeout: scaleTimeout(240_000) },
  async (t) => {
    const demo = spawnChild(
      process.execPath,
      [flock, "demo", "--report-dir", fileURLToPath(new URL("../../../reports", import.meta.url))],
      { name: "demo" },
    );
    t.after(() => demo.stop());
    await demo.waitForLine(/death node-3/, scaleTimeout(120_000));
    await demo.waitForLine(/join node-3/, scaleTimeout(120_000));
    const [, accuracy] = await demo.waitForLine(/finished: accuracy ([0-9.]+)/, scaleTimeout(120_000));
    assert.ok(Number(accuracy) >= 0.9, `accuracy ${accuracy}`);
    await demo.waitForLine(
      /every sample counted once per epoch: 8000, 8000, 8000, 8000 of 8000; replicas identical: true/,
    );
    const exit = await demo.exited;
    assert.equal(exit.code, 0, demo.output());
  },
);
