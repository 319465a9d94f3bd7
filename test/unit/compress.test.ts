/**
 * Gradient compression (actors/compute/compress.ts): binary16 conversion at its edges, int8 block
 * quantization bounds, payload sizes, malformed payloads refused without a throw, and error
 * feedback losing nothing over many steps while plain quantization drifts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decode,
  encode,
  encodedBytes,
  ErrorFeedback,
  FP16_MAX,
  fromHalfBits,
  INT8_BLOCK,
  toHalfBits,
  type Encoding,
} from "../../actors/compute/compress.js";

const roundTrip = (e: Encoding, x: Float32Array) => decode(e, encode(e, x), x.length)!;

/** A deterministic pseudo-random vector in [−amp, amp]. */
function noise(n: number, seed: number, amp = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 2 ** 32) * 2 - 1) * amp;
  });
}

test("fp16: every finite binary16 value survives fp32 → fp16 → fp32 exactly", () => {
  for (let h = 0; h < 65536; h++) {
    const v = fromHalfBits(h);
    if (!Number.isFinite(v)) continue;
    assert.equal(toHalfBits(v), h, `bits ${h.toString(16)} (${v})`);
  }
});

test("fp16: known values, subnormals, ties to even, overflow clamp, ±∞ and NaN", () => {
  assert.equal(toHalfBits(1), 0x3c00);
  assert.equal(toHalfBits(-2), 0xc000);
  assert.equal(toHalfBits(65504), 0x7bff);
  assert.equal(toHalfBits(2 ** -24), 0x0001, "smallest subnormal");
  assert.equal(toHalfBits(2 ** -14), 0x0400, "smallest normal");
  assert.equal(toHalfBits(1023 * 2 ** -24), 0x03ff, "largest subnormal");
  assert.equal(toHalfBits(2 ** -25), 0x0000, "half the smallest subnormal ties to even (0)");
  assert.equal(toHalfBits(3 * 2 ** -25), 0x0002, "1.5 × smallest subnormal ties to even (2)");
  assert.equal(toHalfBits(2 ** -25 * 1.0001), 0x0001, "just above the tie rounds up");
  assert.equal(toHalfBits(1e-10), 0x0000);
  assert.equal(toHalfBits(-1e-10), 0x8000, "negative underflow keeps its sign");
  assert.equal(toHalfBits(1 + 2 ** -11), 0x3c00, "tie between 1 and 1 + 2⁻¹⁰ goes to even 1");
  assert.equal(toHalfBits(1 + 3 * 2 ** -11), 0x3c02, "tie between 1+2⁻¹⁰ and 1+2⁻⁹ goes to even");
  assert.equal(toHalfBits(4095 * 2 ** -12), 0x3c00, "a tie above 0x3bff carries into the exponent");
  assert.equal(toHalfBits(2047 * 2 ** -11), 0x3bff);
  assert.equal(toHalfBits(1e6), 0x7bff, "overflow clamps to the largest finite");
  assert.equal(toHalfBits(-1e6), 0xfbff);
  assert.equal(toHalfBits(65520), 0x7bff, "what would round to ∞ is clamped");
  assert.equal(toHalfBits(Infinity), 0x7c00);
  assert.equal(toHalfBits(-Infinity), 0xfc00);
  assert.ok(Number.isNaN(fromHalfBits(toHalfBits(NaN))));
  assert.ok(Object.is(fromHalfBits(toHalfBits(-0)), -0));
  assert.equal(fromHalfBits(0x7bff), FP16_MAX);
});

test("fp16: the vector encoder agrees with the scalar conversion on 200 000 random float32 bit patterns", () => {
  let s = 12345;
  const bits = Uint32Array.from({ length: 200_000 }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0));
  const x = new Float32Array(bits.buffer);
  const bytes = encode("fp16", x);
  const decoded = new Float32Array(x.length);
  encode("fp16", x, decoded);
  for (let i = 0; i < x.length; i++) {
    const h = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
    assert.equal(h, toHalfBits(x[i]!), `bits ${bits[i]!.toString(16)}`);
    assert.ok(Object.is(decoded[i], fromHalfBits(h)) || Number.isNaN(decoded[i]));
  }
});

test("fp16: relative error at most 2⁻¹¹ on normal values; payload is half the fp32 bytes", () => {
  const x = noise(10_000, 1, 100);
  const y = roundTrip("fp16", x);
  for (let i = 0; i < x.length; i++) {
    if (Math.abs(x[i]!) < 2 ** -14) continue;
    assert.ok(Math.abs(y[i]! - x[i]!) <= Math.abs(x[i]!) * 2 ** -11, `${x[i]} → ${y[i]}`);
  }
  assert.equal(encode("fp16", x).length, x.byteLength / 2);
  assert.equal(encodedBytes("fp16", 7), 14);
});

test("int8: error at most half a quantum per block; exact on multiples of the scale; size ≈ quarter", () => {
  const x = noise(1000, 2, 3);
  const y = roundTrip("int8", x);
  for (let b = 0; b * INT8_BLOCK < x.length; b++) {
    const block = x.subarray(b * INT8_BLOCK, (b + 1) * INT8_BLOCK);
    const quantum = Math.max(...block.map(Math.abs)) / 127;
    for (let i = 0; i < block.length; i++) {
      const k = b * INT8_BLOCK + i;
      assert.ok(Math.abs(y[k]! - x[k]!) <= quantum / 2 + 1e-7, `${x[k]} → ${y[k]}`);
    }
  }
  // Every block holds −127/4, so its scale is 1/4 and every multiple of 1/4 in ±127/4 is exact.
  const exact = Float32Array.from({ length: 512 }, (_, i) => ((i % 254) - 127) / 4);
  assert.deepEqual(roundTrip("int8", exact), exact, "multiples of max/127 are exact");
  const bytes = encode("int8", x);
  assert.equal(bytes.length, 1000 + 4 * Math.ceil(1000 / INT8_BLOCK));
  assert.ok(bytes.length <= x.byteLength / 4 + (4 * x.length) / INT8_BLOCK + 4);
  assert.deepEqual(roundTrip("int8", new Float32Array(5)), new Float32Array(5), "an all-zero block");
  const odd = roundTrip("int8", Float32Array.from([NaN, Infinity, -Infinity, 1, -0.5]));
  assert.deepEqual([...odd], [0, 1, -1, 1, Math.fround(-64 / 127)], "NaN → 0, ±∞ → the block's extreme");
});

test("decode: a malformed payload is refused (undefined), never thrown, never over-allocated", () => {
  const x = noise(600, 3);
  for (const e of ["fp16", "int8"] as const) {
    const bytes = encode(e, x);
    assert.equal(decode(e, bytes, 601), undefined, "length disagreeing with the bytes");
    assert.equal(decode(e, bytes.subarray(1), 600), undefined, "truncated");
    assert.equal(decode(e, bytes, -1), undefined);
    assert.equal(decode(e, bytes, 2 ** 60), undefined, "a huge claimed length");
    assert.equal(decode(e, bytes, 600, new Float32Array(10)), undefined, "target of another length");
  }
  const bytes = encode("int8", x);
  const view = new DataView(bytes.buffer);
  for (const bad of [NaN, Infinity, -1]) {
    const copy = bytes.slice();
    new DataView(copy.buffer).setFloat32(4, bad, true);
    assert.equal(decode("int8", copy, 600), undefined, `scale ${bad}`);
  }
  const minus128 = bytes.slice();
  minus128[4 * 3 + 10] = 0x80;
  assert.equal(decode("int8", minus128, 600), undefined, "int8 −128 is not in the format");
  assert.ok(view.getFloat32(0, true) > 0);
  // Decoding from a view at an odd offset (how msgpack hands bin payloads out) works.
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(decode("int8", shifted.subarray(1), 600), decode("int8", bytes, 600));
});

/** Sums (in float64) of the true and the decoded gradients over `steps` steps of `gradient(step)`. */
function drift(e: Encoding, feedback: boolean, steps: number, gradient: (s: number) => Float32Array) {
  const n = gradient(0).length;
  const ef = new ErrorFeedback(e, n);
  const truth = new Float64Array(n);
  const got = new Float64Array(n);
  for (let s = 0; s < steps; s++) {
    const g = gradient(s);
    const bytes = feedback ? ef.encode(g) : encode(e, g);
    const d = decode(e, bytes, n)!;
    for (let i = 0; i < n; i++) {
      truth[i]! += g[i]!;
      got[i]! += d[i]!;
    }
  }
  return { truth, got, residual: ef.residual };
}

test("error feedback: the decoded sum stays within one quantum of the true sum; without it, it drifts", () => {
  // Gradients whose small parts each encoding drops every time: int8 blocks led by a large value,
  // and fp16 values below half its smallest subnormal or between two binary16 neighbours.
  const cases: Array<{ e: Encoding; quantum: number; g: (s: number) => Float32Array }> = [
    {
      e: "int8",
      quantum: 1 / 127,
      g: (s) =>
        Float32Array.from({ length: 512 }, (_, i) =>
          i % 256 === 0 ? 1 : 0.001 + noise(1, s * 512 + i)[0]! * 0.0005,
        ),
    },
    {
      e: "fp16",
      quantum: 2 ** -10,
      g: (s) =>
        Float32Array.from({ length: 300 }, (_, i) =>
          i < 150 ? 1e-8 : 1 + 2 ** -12 + noise(1, s + i)[0]! * 1e-5,
        ),
    },
  ];
  for (const { e, quantum, g } of cases) {
    const steps = 2000;
    const withEf = drift(e, true, steps, g);
    const without = drift(e, false, steps, g);
    let worstEf = 0;
    let worstPlain = 0;
    for (let i = 0; i < withEf.truth.length; i++) {
      worstEf = Math.max(worstEf, Math.abs(withEf.truth[i]! - withEf.got[i]!));
      worstPlain = Math.max(worstPlain, Math.abs(without.truth[i]! - without.got[i]!));
    }
    assert.ok(
      worstEf <= quantum,
      `${e}: with feedback the sums differ by ${worstEf} > one quantum ${quantum}`,
    );
    assert.ok(worstPlain > 100 * quantum, `${e}: without feedback the sums drift (${worstPlain})`);
    // What is left out is exactly the residual (up to float32 rounding of the running sums).
    for (let i = 0; i < withEf.truth.length; i++)
      assert.ok(Math.abs(withEf.truth[i]! - withEf.got[i]! - withEf.residual[i]!) < 1e-3);
  }
});

test("error feedback: a non-finite gradient does not poison the residual", () => {
  for (const e of ["fp16", "int8"] as const) {
    const ef = new ErrorFeedback(e, 3);
    ef.encode(Float32Array.from([Infinity, NaN, 0.3]));
    assert.ok(ef.residual.every(Number.isFinite), `${e}: ${[...ef.residual].join(",")}`);
    assert.throws(() => ef.encode(new Float32Array(4)), RangeError);
  }
});
