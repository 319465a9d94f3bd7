/**
 * Magnitude pruning (actors/compute/prune.ts): the smallest-magnitude fraction of each kernel
 * set to 0 with ties broken by position, biases untouched, the sparsity counted, and the zeros
 * still exactly 0 after uint8 quantisation as stock tfjs decodes it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { isPrunable, magnitudePrune, pruneWeights, sparsityOf } from "../../actors/compute/prune.js";
import { quantizeWeights, type WeightSpec } from "../../actors/compute/quantize.js";

test("the smallest magnitudes go first, ties by position; sparsity 0 keeps everything", () => {
  const x = Float32Array.from([0.5, -0.1, 0.2, -0.2, 0.05, 3]);
  assert.deepEqual(
    Array.from(magnitudePrune(x, 0.5)),
    Array.from(Float32Array.from([0.5, 0, 0, -0.2, 0, 3])),
  );
  assert.deepEqual(Array.from(magnitudePrune(x, 0)), Array.from(x));
  assert.deepEqual(Array.from(x), Array.from(Float32Array.from([0.5, -0.1, 0.2, -0.2, 0.05, 3])), "a copy");
  assert.throws(() => magnitudePrune(x, 1), RangeError);
  assert.deepEqual(Array.from(magnitudePrune(new Float32Array(0), 0.5)), []);
});

test("only kernels are pruned; the sparsity reached is counted; uint8 keeps the zeros exact", () => {
  assert.ok(isPrunable("dense/kernel") && isPrunable("conv/depthwise_kernel") && !isPrunable("dense/bias"));
  const kernel = Float32Array.from({ length: 40 }, (_, i) => Math.sin(i + 1));
  const bias = Float32Array.from([0.001, -0.002, 0.003, 0.004]);
  const specs: WeightSpec[] = [
    { name: "hidden/kernel", shape: [10, 4], dtype: "float32" },
    { name: "hidden/bias", shape: [4], dtype: "float32" },
  ];
  const data = new Uint8Array(44 * 4);
  data.set(new Uint8Array(kernel.buffer), 0);
  data.set(new Uint8Array(bias.buffer), 160);
  assert.deepEqual(sparsityOf(specs, data), { zeros: 0, values: 40 });
  const p = pruneWeights(specs, data, 0.75);
  assert.deepEqual(p.sparsity, { zeros: 30, values: 40 });
  assert.deepEqual(Array.from(new Float32Array(p.data.buffer, 160, 4)), Array.from(bias), "biases untouched");
  const q = quantizeWeights(specs, p.data, "uint8");
  const decoded = tf.io.decodeWeights(new Uint8Array(q.data).buffer, q.specs as tf.io.WeightsManifestEntry[]);
  const k = decoded["hidden/kernel"]!.dataSync();
  const pruned = new Float32Array(p.data.buffer, 0, 40);
  for (let i = 0; i < 40; i++) if (pruned[i] === 0) assert.equal(k[i], 0, `value ${i} stays exactly 0`);
  assert.equal(Array.from(k).filter((v) => v === 0).length, 30);
});
