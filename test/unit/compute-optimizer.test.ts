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
