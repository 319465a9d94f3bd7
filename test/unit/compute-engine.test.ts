import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import {
  ComputeEngine,
  createOptimizer,
  paramHash,
  ParamLengthError,
  plainTrainLoop,
  seededPermutation,
} from "../../actors/compute/index.js";

const engine = await ComputeEngine.create({ model: "mnist-mlp", dataset: "mnist", backend: "wasm", seed: 1 });

test("engine reports what it runs on", () => {
  assert.equal(engine.info.backend, "wasm");
  assert.equal(engine.info.paramCount, 101770);
  assert.equal(engine.paramCount, 101770);
  assert.equal(engine.info.trainSize, 8000);
});

test("initParams is deterministic per seed and pinned across machines", () => {
  assert.equal(paramHash(engine.initParams(0)), "a3c29200cb381e7b");
  assert.equal(paramHash(engine.initParams(1)), "6ff252cf72eb4a74");
  assert.equal(paramHash(engine.initParams()), "6ff252cf72eb4a74", "defaults to the engine's seed");
  const p = engine.initParams(7);
  const limit = Math.sqrt(6 / (784 + 128));
  assert.ok(p.subarray(0, 784 * 128).every((v) => Math.abs(v) <= limit));
  assert.ok(
    p.subarray(784 * 128, 784 * 128 + 128).every((v) => v === 0),
    "biases start at zero",
  );
});

test("setParams/getParams round-trip and reject wrong lengths", () => {
  const p = engine.initParams(3);
  engine.setParams(p);
  p[0]! += 1; // the engine holds its own copy
  assert.equal(paramHash(engine.getParams()), paramHash(engine.initParams(3)));
  assert.throws(() => engine.setParams(new Float32Array(10)), ParamLengthError);
});

test("gradients are sums: g([a, b]) = g([a]) + g([b])", () => {
  engine.setParams(engine.initParams(1));
  const both = engine.gradients([5, 17]);
  const a = engine.gradients([5]);
  const b = engine.gradients([17]);
  assert.equal(both.n, 2);
  assert.ok(Math.abs(both.lossSum - (a.lossSum + b.lossSum)) < 1e-4);
  let maxErr = 0;
  let maxAbs = 0;
  for (let i = 0; i < both.grad.length; i++) {
    const [g, ga, gb] = [both.grad[i]!, a.grad[i]!, b.grad[i]!]; // i < length of all three
    maxErr = Math.max(maxErr, Math.abs(g - (ga + gb)));
    maxAbs = Math.max(maxAbs, Math.abs(g));
  }
  assert.ok(maxAbs > 0.01, "the gradient is not trivially zero");
  assert.ok(maxErr < 1e-5 * Math.max(1, maxAbs), `max deviation ${maxErr}`);
  assert.deepEqual(engine.gradients([]), { grad: new Float32Array(engine.paramCount), lossSum: 0, n: 0 });
});

test("no tensors leak across steps", () => {
  engine.gradients([0, 1, 2]);
  engine.evaluate([0, 1]);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 20; i++) {
    engine.setParams(engine.getParams());
    engine.gradients([i, i + 1, i + 2, i + 3]);
    engine.evaluate([i]);
  }
  assert.equal(tf.memory().numTensors, before);
});

test("mnist-mlp trained 300 steps (batch 64, adam 1e-3) reaches >= 0.85 test accuracy", () => {
  const params = engine.initParams(1);
  engine.setParams(params);
  const optimizer = createOptimizer({ name: "adam", lr: 1e-3 });
  const order = seededPermutation(engine.info.trainSize, 42);
  for (let step = 0; step < 300; step++) {
    const start = (step * 64) % 8000;
    const { grad, n } = engine.gradients(Array.from(order.subarray(start, start + 64)));
    optimizer.step(params, grad, 1 / n);
    engine.setParams(params);
  }
  const result = engine.evaluate();
  assert.equal(result.n, 2000);
  assert.ok(result.accuracy >= 0.85, `accuracy ${result.accuracy}`);
  assert.ok(result.loss < 0.6, `loss ${result.loss}`);
});

test("plainTrainLoop reports throughput, accuracy and backend", async () => {
  const result = await plainTrainLoop({
    model: "spam-bow",
    dataset: "spam-assassin",
    backend: "wasm",
    batchSize: 64,
    steps: 40,
    seed: 2,
  });
  assert.equal(result.backend, "wasm");
  assert.equal(result.steps, 40);
  assert.equal(result.samples, 40 * 64);
  assert.ok(result.samplesPerSec > 0);
  assert.ok(result.accuracy > 0.8, `spam accuracy ${result.accuracy}`);
});
