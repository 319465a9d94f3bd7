import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  createOptimizer,
  createPrng,
  OptimizerStateError,
  paramHash,
  ParamLengthError,
  type OptimizerSpec,
} from "../../actors/compute/index.js";

function randomVector(n: number, seed: number): Float32Array {
  const rng = createPrng(seed);
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

for (const spec of [
  { name: "sgd", lr: 0.1, momentum: 0.9 },
  { name: "sgd", lr: 0.1 },
  { name: "adam", lr: 1e-3 },
  { name: "adam", lr: 1e-3, warmup: 7 },
  { name: "sgd", lr: 0.1, momentum: 0.9, warmup: 6 },
] satisfies OptimizerSpec[]) {
  test(`${spec.name} (${JSON.stringify(spec)}): export/import continues bit-identically`, () => {
    const n = 1000;
    const grads = Array.from({ length: 10 }, (_, i) => randomVector(n, 100 + i));
    const reference = randomVector(n, 1);
    const straight = createOptimizer(spec);
    for (const g of grads) straight.step(reference, g, 0.5);

    const params = randomVector(n, 1);
    const first = createOptimizer(spec);
    for (const g of grads.slice(0, 4)) first.step(params, g, 0.5);
    const state = first.exportState();
    assert.equal(state.t, 4);
    // The export is a copy: stepping the source afterwards must not change it.
    first.step(params.slice(), grads[4]!, 0.5);
    const resumed = createOptimizer(spec);
    resumed.importState(state);
    for (const g of grads.slice(4)) resumed.step(params, g, 0.5);

    assert.equal(resumed.t, 10);
    assert.ok(bytes(params).equals(bytes(reference)), "resumed parameters are bit-identical");
    assert.equal(paramHash(params), paramHash(reference));
  });
}

test("sgd and adam take the textbook first step", () => {
  const p = Float32Array.from([1, 2]);
  createOptimizer({ name: "sgd", lr: 0.5 }).step(p, Float32Array.from([2, -4]));
  assert.deepEqual(Array.from(p), [0, 4]);
  const q = Float32Array.from([1, 1]);
  // Adam's first bias-corrected step is lr · g / (|g| + ε) ≈ lr · sign(g).
  createOptimizer({ name: "adam", lr: 0.01 }).step(q, Float32Array.from([3, -0.5]));
  const [q0 = NaN, q1 = NaN] = q;
  assert.ok(Math.abs(q0 - 0.99) < 1e-6 && Math.abs(q1 - 1.01) < 1e-6);
});

test("warmup: step t of W moves by t/W of the full rate, then by the full rate", () => {
  // Plain SGD moves a parameter by exactly lr·g per step, so each step's rate can be read off.
  const moves = (spec: OptimizerSpec, steps: number) => {
    const opt = createOptimizer(spec);
    const p = new Float32Array([0]);
    return Array.from({ length: steps }, () => {
      const before = p[0]!;
      opt.step(p, new Float32Array([1]));
      return before - p[0]!;
    });
  };
  const warmed = moves({ name: "sgd", lr: 0.4, warmup: 4 }, 6);
  const expected = [0.1, 0.2, 0.3, 0.4, 0.4, 0.4];
  warmed.forEach((m, i) => assert.ok(Math.abs(m - expected[i]!) < 1e-6, `step ${i + 1}: ${m}`));
  assert.deepEqual(moves({ name: "sgd", lr: 0.4, warmup: 0 }, 3), moves({ name: "sgd", lr: 0.4 }, 3));
  // Adam's first step moves by lr (its update is ±lr before the moments settle): lr/W warmed up.
  const adam = createOptimizer({ name: "adam", lr: 0.01, warmup: 10 });
  const p = new Float32Array([0]);
  adam.step(p, new Float32Array([3]));
  assert.ok(Math.abs(p[0]! + 0.001) < 1e-7, `adam's first warmed-up step: ${p[0]}`);
  assert.throws(() => createOptimizer({ name: "adam", lr: 0.01, warmup: 1.5 }), RangeError);
  assert.throws(() => createOptimizer({ name: "sgd", lr: 0.01, warmup: -1 }), RangeError);
});

test("optimizer state that does not fit is refused", () => {
  const adam = createOptimizer({ name: "adam", lr: 1e-3 });
  adam.step(new Float32Array(4), new Float32Array(4).fill(1));
  const sgd = createOptimizer({ name: "sgd", lr: 1, momentum: 0.9 });
  assert.throws(() => sgd.importState(adam.exportState()), OptimizerStateError);
  assert.throws(() => adam.step(new Float32Array(5), new Float32Array(5)), ParamLengthError);
  assert.throws(() => adam.step(new Float32Array(4), new Float32Array(3)), ParamLengthError);
  assert.throws(
    () => adam.importState({ name: "adam", t: 1, buffers: [new Float32Array(2)] }),
    OptimizerStateError,
  );
  assert.throws(() => createOptimizer({ name: "adam", lr: -1 }), RangeError);
});

test("paramHash is the first 16 hex chars of sha256 over the float bytes", () => {
  const p = Float32Array.from([1, 2, 3]);
  const expected = createHash("sha256").update(bytes(p)).digest("hex").slice(0, 16);
  assert.equal(paramHash(p), expected);
  assert.equal(paramHash(p.subarray(1)), paramHash(Float32Array.from([2, 3])));
  assert.notEqual(paramHash(Float32Array.from([1, 2, 3.0000002])), expected);
});
