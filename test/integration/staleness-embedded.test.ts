/**
 * Bounded staleness (`sync: { staleness: 1 }`) on the embedded default (in-process bus, in-memory
 * stores, trainers in worker threads): MNIST still reaches ≥ 0.90 with every sample counted once,
 * steps committed once each in order and the replicas bit-identical — also when a node dies while
 * a step is started ahead of a commit and comes back.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveJobSpec, runJob } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import type { JobEvent } from "../../messages/index.js";
import { scaleTimeout } from "../helpers/index.js";
import { assertGuarantees, killMidJob } from "./mode-guarantees.js";

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
    const spec = resolveJobSpec("mnist", {
      epochs: 1,
      minWorkers: 1,
      maxWorkers: 2,
      seed: 5,
      sync: { staleness: 1 },
    });
    await killMidJob(t, spec, 20);
  },
);
