/**
 * Elasticity on the embedded default (in-process bus, in-memory stores, trainers in worker threads):
 * a job below minWorkers pauses instead of failing, and resumes when a node comes back.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveJobSpec, runJob } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import type { JobEvent } from "../../messages/index.js";
import { scaleTimeout } from "../helpers/index.js";

test(
  "below minWorkers the job pauses, and resumes when the node returns as a new incarnation",
  { timeout: scaleTimeout(120_000) },
  async (t) => {
    const cluster = await EmbeddedCluster.start({ nodes: 2 });
    t.after(() => cluster.close());
    const events: JobEvent[] = [];
    let killedAt = 0;
    let restartedAt = 0;
    let stepsWhileDown = 0;
    const result = await runJob(
      cluster.handle,
      resolveJobSpec("mnist", { epochs: 1, minWorkers: 2, maxWorkers: 2, seed: 3 }),
      {
        onEvent: (e) => {
          events.push(e);
          if (e.type === "job.step" && e.step === 30 && !killedAt) {
            killedAt = Date.now();
            void cluster.kill("node-2").then(() =>
              setTimeout(() => {
                restartedAt = Date.now();
                void cluster.startNode("node-2");
              }, 3_000),
            );
          }
          if (e.type === "job.step" && killedAt && !restartedAt && e.at > killedAt + 2_500) stepsWhileDown++;
        },
      },
    );
    assert.equal(result.status, "completed");
    assert.deepEqual(result.samplesPerEpoch, [8000]);
    assert.ok(result.ledgerAudit.exact);
    assert.equal(result.replicasConsistent, true);
    assert.equal(stepsWhileDown, 0, "no step committed with fewer than minWorkers members");
    const membership = result.membership;
    assert.ok(membership.some((m) => m.kind === "death" && m.node === "node-2"));
    assert.ok(
      membership.filter((m) => m.kind === "join" && m.node === "node-2").length >= 2,
      "node-2 joined again",
    );
    const after = events.filter(
      (e): e is Extract<JobEvent, { type: "job.step" }> => e.type === "job.step" && e.at > restartedAt,
    );
    assert.ok(
      after.length > 0 && after.every((e) => e.members === 2),
      "steps after the return run with both members",
    );
  },
);
