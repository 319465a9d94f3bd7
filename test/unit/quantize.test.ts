/**
 * The weight quantiser (actors/compute/quantize.ts), decoded by tfjs-core's own
 * `io.decodeWeights` (what stock `tf.loadLayersModel` runs): uint8 round-trip error within half a
 * step, scale/min as tfjs-converter computes them and exactly what tfjs multiplies by, zero kept
 * exactly, constant and empty tensors, float16 bits, and bad weights refused by name.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import {
  affineRange,
  quantizeFloat16,
  quantizeUint8,
  quantizeWeights,
  QuantizeError,
  roundHalfEven,
  type WeightSpec,
} from "../../actors/compute/quantize.js";

/** A deterministic pseudo-random vector in [lo, hi]. */
function noise(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s / 2 ** 32) * (hi - lo);
  });
}

const bytesOf = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

/** Quantises named float32 tensors and decodes them back with stock tfjs. */
function roundTrip(tensors: Record<string, Float32Array>, dtype: "uint8" | "float16") {
  const specs: WeightSpec[] = Object.entries(tensors).map(([name, v]) => ({
    name,
    shape: [v.length],
    dtype: "float32",
  }));
  const raw = new Uint8Array(Object.values(tensors).reduce((n, v) => n + v.byteLength, 0));
  let at = 0;
  for (const v of Object.values(tensors)) {
    raw.set(bytesOf(v), at);
    at += v.byteLength;
  }
  const q = quantizeWeights(specs, raw, dtype);
  const buffer = new Uint8Array(q.data).buffer; // a copy on its own ArrayBuffer
  const decoded = tf.io.decodeWeights(buffer, q.specs as tf.io.WeightsManifestEntry[]);
  const values = Object.fromEntries(
    Object.entries(decoded).map(([k, t]) => [k, t.dataSync() as Float32Array]),
  );
  return { q, values };
}

test("roundHalfEven rounds ties to even like numpy", () => {
  assert.deepEqual(
    [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6].map(roundHalfEven),
    [0, 2, 2, -0, -2, -2, 2, -3],
  );
});

test("uint8: tfjs decodes every value within half a step; the bytes are a quarter of float32", () => {
  const x = noise(4096, 7, -0.8, 1.3);
  const { q, values } = roundTrip({ w: x }, "uint8");
  const spec = q.specs[0]!;
  const { scale, min } = spec.quantization as { scale: number; min: number };
  assert.equal(spec.dtype, "float32", "the manifest keeps the weight's own dtype");
  assert.equal(spec.quantization?.dtype, "uint8");
  assert.equal(q.data.length, x.length, "one byte per value");
  const w = values.w!;
  for (let i = 0; i < x.length; i++) {
    const err = Math.abs(w[i]! - x[i]!);
    assert.ok(err <= scale / 2 + Math.abs(x[i]!) * 2 ** -23, `value ${i}: error ${err} > ${scale / 2}`);
  }
  // The decoded value is exactly what tfjs computes from the stored code: q * scale + min in float32.
  for (let i = 0; i < x.length; i++) assert.equal(w[i], Math.fround(q.data[i]! * scale + min));
});

test("uint8: scale and min are tfjs-converter's affine range, with zero on a code", () => {
  const x = Float32Array.from([-1, -0.25, 0, 0.3, 2]);
  const code = quantizeUint8(x, "w");
  const lo = Math.fround(-1);
  const hi = Math.fround(2);
  const scale = (hi - lo) / 255;
  const zeroPoint = Math.round(-lo / scale); // 85: no tie here
  assert.equal(code.scale, scale);
  assert.equal(code.min, -zeroPoint * scale);
  assert.equal(code.bytes[2], zeroPoint, "0 maps to the zero point");
  const { values } = roundTrip({ w: x }, "uint8");
  assert.equal(values.w?.[2], 0, "0 decodes to exactly 0 (pruned weights stay pruned)");
  // A range above zero is not nudged.
  assert.deepEqual(affineRange(1, 3.55), { scale: (3.55 - 1) / 255, min: 1, max: 3.55 });
});

test("uint8: a constant tensor is zeros with scale 1 and min its value, decoded exactly", () => {
  const x = new Float32Array(10).fill(-0.123);
  const code = quantizeUint8(x, "c");
  assert.equal(code.scale, 1);
  assert.equal(code.min, Math.fround(-0.123));
  assert.ok(code.bytes.every((b) => b === 0));
  const { values } = roundTrip({ c: x, zeros: new Float32Array(3) }, "uint8");
  assert.deepEqual(Array.from(values.c!), Array.from(x));
  assert.deepEqual(Array.from(values.zeros!), [0, 0, 0]);
});

test("empty tensors have no bytes and decode to empty tensors, between others", () => {
  for (const dtype of ["uint8", "float16"] as const) {
    const { q, values } = roundTrip(
      { a: Float32Array.from([1, 2]), e: new Float32Array(0), b: Float32Array.from([3]) },
      dtype,
    );
    assert.equal(q.data.length, (dtype === "uint8" ? 1 : 2) * 3);
    assert.equal(values.e?.length, 0);
    assert.deepEqual(Array.from(values.b!), [3], `${dtype}: the weight after the empty one is in place`);
  }
  assert.deepEqual(quantizeUint8(new Float32Array(0), "e"), { bytes: new Uint8Array(0), scale: 1, min: 0 });
});

test("float16: binary16 bits round to nearest even, tfjs decodes them within 2^-11 relative", () => {
  const bits = new Uint16Array(
    quantizeFloat16(Float32Array.from([1, -2, 65504, 2 ** -24, 0.1, 0, 1 + 2 ** -11]), "h").buffer,
  );
  assert.deepEqual(Array.from(bits), [0x3c00, 0xc000, 0x7bff, 0x0001, 0x2e66, 0, 0x3c00]);
  const x = noise(2048, 3, -4, 4);
  const { q, values } = roundTrip({ w: x }, "float16");
  assert.deepEqual(q.specs[0]?.quantization, { dtype: "float16" });
  assert.equal(q.data.length, 2 * x.length);
  for (let i = 0; i < x.length; i++)
    assert.ok(Math.abs(values.w![i]! - x[i]!) <= Math.abs(x[i]!) * 2 ** -11 + 2 ** -25, `value ${i}`);
});

test("bad weights are refused by name; non-float32 weights pass through", () => {
  assert.throws(
    () => quantizeUint8(Float32Array.from([1, NaN]), "dense/kernel"),
    (e: unknown) => {
      return e instanceof QuantizeError && e.message.includes("dense/kernel");
    },
  );
  assert.throws(() => quantizeFloat16(Float32Array.from([70000]), "big"), QuantizeError);
  assert.throws(
    () => quantizeWeights([{ name: "w", shape: [4], dtype: "float32" }], new Uint8Array(12), "uint8"),
    /runs past the end/,
  );
  assert.throws(
    () => quantizeWeights([{ name: "w", shape: [1], dtype: "float32" }], new Uint8Array(8), "uint8"),
    /holds 8 bytes, the manifest 4/,
  );
  const ints = new Uint8Array(Int32Array.from([5, -7]).buffer);
  const q = quantizeWeights([{ name: "i", shape: [2], dtype: "int32" }], ints, "uint8");
  assert.deepEqual(q.specs, [{ name: "i", shape: [2], dtype: "int32" }]);
  assert.deepEqual(Array.from(q.data), Array.from(ints));
});
