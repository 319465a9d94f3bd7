/**
 * Local steps (`sync: { every: 8 }`, DiLoCo) on the embedded default (in-process bus,
 * in-memory stores, trainers in worker threads): each committed step is a round of 8 inner Adam
 * steps per trainer, averaged by the reducers' outer Nesterov SGD. MNIST still trains well with
 * every sample counted once, rounds committed once each in order and the replicas bit-identical —
 * also when a node dies mid-round and comes back.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveJobSpec, runJob } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import type { JobEvent } from "../../messages/index.js";
import { scaleTimeout } from "../helpers/index.js";
import { assertGuarantees, killMidJob } from "./mode-guarantees.js";

test(
  "two workers with 8 local steps a round train MNIST to ≥ 0.90 in 8× fewer rounds, every sample once",
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
    assert.ok(result.accuracy >= 0.9, `accuracy ${result.accuracy}`);
  },
);

test(
  "a node killed mid-round: the round is redone by the survivor, nothing is lost or counted twice",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    const spec = resolveJobSpec("mnist", {
      epochs: 1,
      minWorkers: 1,
      maxWorkers: 2,
      seed: 5,
      hashEvery: 2,
      sync: { every: 4 },
    });
    await killMidJob(t, spec, 5);
  },
);
