/**
 * Local steps (`sync: { every: 8 }`, DiLoCo) on the embedded default (in-process bus,
 * in-memory stores, trainers in worker threads): each committed step is a round of 8 inner Adam
 * steps per trainer, averaged by the reducers' outer Nesterov SGD. MNIST still trains well with
 * every sample counted once, rounds committed once each in order and the replicas bit-identical —
 * also when a node dies mid-round and comes back.
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
    "rounds commit once each, in order",
  );
}

test(
  "two workers with 8 local steps a round train MNIST to ≥ 0.88 in 8× fewer rounds, every sample once",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    const cluster = await EmbeddedCluster.start({ nodes: 2 });
    t.after(() => cluster.close());
    const events: JobEvent[] = [];
    const spec = resolveJobSpec("mnist", {
      minWorkers: 2,
      maxWorkers: 2,
      seed: 3,
      hashEvery: 2,
      sync: { every: 8 },
    });
    const result = await runJob(cluster.handle, spec, { onEvent: (e) => events.push(e) });
    assertGuarantees(result, events, spec.epochs);
    // 8000 samples / (8 × 64) a round: 16 rounds an epoch (the last one short), against 125 steps.
    assert.equal(result.steps, 32);
    assert.ok(result.accuracy >= 0.88, `accuracy ${result.accuracy}`);
  },
);

test(
  "a node killed mid-round: the round is redone by the survivor, nothing is lost or counted twice",
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
      hashEvery: 2,
      sync: { every: 4 },
    });
    const result = await runJob(cluster.handle, spec, {
      onEvent: (e) => {
        events.push(e);
        if (e.type === "job.step" && e.step === 5 && !killed) {
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
