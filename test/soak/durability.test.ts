/**
 * The faults that no process outlives: `flock chaos` with a fixed seed, faults
 * `total` (every daemon SIGKILLed at once, all restarted 3–6 s later) and `jetstream-outage` (every
 * nats-server stopped past the daemons' 15 s identity TTL, restarted with its store), once each,
 * on 2 epochs after a fault-free baseline. The job must come back from its latest complete
 * checkpoint each time and keep every invariant: every sample once per epoch across the restores,
 * bit-identical replicas, the step events back only to a restore's checkpoint, and at most
 * `checkpointEvery` committed steps lost per fault.
 *
 * Not in `npm test` yet (`npm run test:durability` runs it): on the 2-core machine it failed 2 of
 * its last 4 runs — after the outage the three nodes' coordinator candidates took the job's lease
 * from each other about once a second for over a minute (see issue 14's closing note), so the job
 * made no progress before the harness's deadline. It goes back into the chaos tier once that is fixed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { DURABILITY_FAULT_KINDS } from "../../tools/chaos/schedule.js";
import { scaleTimeout } from "../helpers/index.js";
import { assertChaosPassed, runChaosCli } from "../chaos/cli.js";

test(
  "a seeded chaos run that loses every daemon, then every nats-server, keeps every invariant",
  { timeout: scaleTimeout(480_000) },
  async (t) => {
    const args = ["--seed", "14", "--faults", DURABILITY_FAULT_KINDS.join(","), "--duration", "20"];
    const run = await runChaosCli(t, [...args, "--epochs", "2"]);
    assertChaosPassed(run);
    const { report } = run;
    assert.deepEqual(
      report.faults.map((f) => f.kind).sort(),
      [...DURABILITY_FAULT_KINDS].sort(),
      "one fault of each durability kind",
    );
    assert.ok(
      report.faults.every((f) => f.recoverySeconds !== null),
      "every fault was followed by committed steps",
    );
    assert.ok(report.restores >= 1, `the job restored from a checkpoint (${report.restores} restores)`);
    assert.ok(report.stepsLost !== null && report.stepsLost <= 2 * 25, `stepsLost ${report.stepsLost}`);
  },
);
