/**
 * Compressed gradient slices on the embedded default (in-process bus, every message through the
 * codec and the wire schemas, trainers in worker threads): two workers train MNIST with
 * `compression` fp16 and int8 to the accuracy of the uncompressed job, every sample counted once
 * and every replica identical, and the trainers send the packed sizes (counted in their metrics).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveJobSpec, runJob } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import { GRAD_BYTES_METRIC } from "../../actors/trainer/grad-codec.js";
import { scaleTimeout } from "../helpers/index.js";

const MNIST_TRAIN = 8000;
/** Parameters of mnist-mlp (see `actors/job/model-bounds.ts`). */
const MNIST_PARAMS = 101_770;

for (const compression of ["fp16", "int8"] as const) {
  test(
    `two workers train MNIST with ${compression} gradients to ≥ 0.90, every sample once, replicas identical`,
    { timeout: scaleTimeout(240_000) },
    async (t) => {
      const cluster = await EmbeddedCluster.start({ nodes: 2 });
      t.after(() => cluster.close());
      const spec = resolveJobSpec("mnist", { minWorkers: 2, maxWorkers: 2, seed: 7, compression });
      const result = await runJob(cluster.handle, spec);
      assert.equal(result.status, "completed");
      assert.deepEqual(
        result.samplesPerEpoch,
        Array(spec.epochs).fill(MNIST_TRAIN),
        "every sample once per epoch",
      );
      assert.ok(result.ledgerAudit.exact, JSON.stringify(result.ledgerAudit));
      assert.equal(
        result.replicasConsistent,
        true,
        `hash mismatches: ${JSON.stringify(result.hashMismatches)}`,
      );
      assert.deepEqual(result.commitAudit.mismatches, []);
      assert.ok(result.accuracy >= 0.9, `accuracy ${result.accuracy}`);
      const nodes = [...cluster.nodes.values()];
      const sent = nodes.map((n) => n.metrics.get(GRAD_BYTES_METRIC, { encoding: compression }));
      const unpacked = nodes.map((n) => n.metrics.get(GRAD_BYTES_METRIC, { encoding: "none" }));
      assert.ok(
        sent.every((b) => b > 0),
        `both trainers sent ${compression} slices: ${sent.join(", ")}`,
      );
      assert.deepEqual(unpacked, [0, 0], "no float32 gradient slices");
      if (compression === "fp16")
        for (const b of sent)
          assert.equal(b % (2 * MNIST_PARAMS), 0, `fp16: 2 bytes a parameter a step (${b})`);
      // fp16: 2 bytes a value; int8: 1 byte a value and a 4-byte scale per 256.
      const perValue = compression === "fp16" ? 2 : 1 + 4 / 256;
      const steps = sent.reduce((a, b) => a + b, 0) / perValue / MNIST_PARAMS;
      t.diagnostic(
        `${compression}: accuracy ${result.accuracy.toFixed(4)}, ${sent.join(" + ")} gradient bytes (≈ ${steps.toFixed(0)} member-steps), ${result.steps} steps`,
      );
    },
  );
}
