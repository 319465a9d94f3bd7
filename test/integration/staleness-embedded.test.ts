/**
 * Bounded staleness (`sync: { staleness: 1 }`) on the embedded default (in-process bus, in-memory
 * stores, trainers in worker threads): MNIST still reaches ≥ 0.90 with every sample counted once,
 * steps committed once each in order and the replicas bit-identical — also when a node dies while
 * a step is started ahead of a commit and comes back.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveJobSpec, runJob, type TrainResult } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import type { JobEvent } from "../../messages/index.js";
import { scaleTimeout } from "../helpers/index.js";

const MNIST_TRAIN = 8000;

function assertGuarantees(r: TrainResult, events: JobEvent[], epochs: number): void {
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

test(
  "two workers with one step of staleness train MNIST to ≥ 0.90, every sample once, replicas identical",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    const cluster = await EmbeddedCluster.start({ nodes: 2 });
    t.after(() => cluster.close());
    const events: JobEvent[] = [];
    const spec = resolveJobSpec("mnist", { minWorkers: 2, maxWorkers: 2, seed: 7, sync: { staleness: 1 } });
    const result = await runJob(cluster.handle, spec, { onEvent: (e) => events.push(e) });
    assertGuarantees(result, events, spec.epochs);
    assert.ok(result.accuracy >= 0.9, `accuracy ${result.accuracy}`);
  },
);

test(
  "a node killed under staleness: the steps in flight are redone, nothing is lost or counted twice",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    const cluster = await EmbeddedCluster.start({ nodes: 2 });
    t.after(() => cluster.close());
    const events: JobEvent[] = [];
    let killed = false;
    const spec = resolveJobSpec("mnist", {
      epochs: 1,
      minWorkers: 1,
      maxWorkers: 2,
      seed: 5,
      sync: { staleness: 1 },
    });
    const result = await runJob(cluster.handle, spec, {
      onEvent: (e) => {
        events.push(e);
        if (e.type === "job.step" && e.step === 20 && !killed) {
          killed = true;
          void cluster.kill("node-2").then(() => setTimeout(() => void cluster.startNode("node-2"), 1_000));
        }
      },
    });
    assert.ok(killed);
    assertGuarantees(result, events, 1);
    assert.ok(
      result.membership.some((m) => m.kind === "death" && m.node === "node-2"),
      "node-2's death was seen",
    );
  },
);
