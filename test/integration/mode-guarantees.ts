/**
 * What every sync mode must keep, asserted the same way by the tests of each mode on the embedded
 * cluster (staleness, local steps): the job completed, every sample counted once per epoch, the
 * commit audit clean, replicas bit-identical at real hash checks, steps committed once each in order;
 * and the scenario that checks it across a node's death mid-job.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { runJob, type TrainResult } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import type { JobSpec } from "../../actors/job/spec.js";
import type { JobEvent } from "../../messages/index.js";

const MNIST_TRAIN = 8000;

/** Asserts the guarantees of a completed MNIST job of `epochs` epochs from its result and events. */
export function assertGuarantees(r: TrainResult, events: readonly JobEvent[], epochs: number): void {
  assert.equal(r.status, "completed");
  assert.deepEqual(r.samplesPerEpoch, Array(epochs).fill(MNIST_TRAIN), "every sample counted once per epoch");
  assert.ok(r.ledgerAudit.exact, JSON.stringify(r.ledgerAudit));
  assert.equal(r.replicasConsistent, true, `hash mismatches: ${JSON.stringify(r.hashMismatches)}`);
  assert.ok(r.hashChecks > 0, "hashes were compared");
  assert.deepEqual(r.commitAudit.mismatches, []);
  const steps = events.flatMap((e) => (e.type === "job.step" && !e.replay ? [e.step] : []));
  assert.deepEqual(
    steps,
    steps.map((_, i) => i + 1),
    "steps commit once each, in order",
  );
}

/**
 * Runs a one-epoch `spec` on two embedded nodes, kills node-2 when step `killAt` commits and
 * starts it again 1 s later, then asserts the guarantees and that the death was seen.
 */
export async function killMidJob(t: TestContext, spec: JobSpec, killAt: number): Promise<TrainResult> {
  const cluster = await EmbeddedCluster.start({ nodes: 2 });
  t.after(() => cluster.close());
  const events: JobEvent[] = [];
  let killed = false;
  const result = await runJob(cluster.handle, spec, {
    onEvent: (e) => {
      events.push(e);
      if (e.type === "job.step" && e.step === killAt && !killed) {
        killed = true;
        void cluster.kill("node-2").then(() => setTimeout(() => void cluster.startNode("node-2"), 1_000));
      }
    },
  });
  assert.ok(killed, `step ${killAt} committed`);
  assertGuarantees(result, events, spec.epochs);
  assert.ok(
    result.membership.some((m) => m.kind === "death" && m.node === "node-2"),
    "node-2's death was seen",
  );
  return result;
}
