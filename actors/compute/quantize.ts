import { toHalfBits } from "./compress.js";

/**
 * Post-training weight quantisation in the tfjs weight format: what `tensorflowjs_converter
 * --quantize_uint8 / --quantize_float16` writes, so stock `tf.loadLayersModel` (tfjs-core's
 * `io.decodeWeights`) reads the result with no flock code. A quantised weight keeps
 * `dtype: "float32"` in its manifest entry and gains `quantization: { dtype, scale?, min? }`;
 * its bytes are one uint8 or one little-endian binary16 per value, weights back to back in
 * manifest order with no padding (tfjs slices each weight out by `size × bytes per value`).
 * tfjs decodes a uint8 value `q` as `q * scale + min` (float64, then stored as float32) and a
 * binary16 with its table decoder. Pure: no tfjs, no I/O.
 * @module
 */

/** The quantisations flock writes (tfjs also reads uint16, which flock does not write). */
export type QuantizeDtype = "uint8" | "float16";

/** The largest uint8 code: tfjs-converter's `np.iinfo(np.uint8).max`. */
const UINT8_MAX = 255;
/** Smallest magnitude binary16 rounds to infinity (65504 + half an ulp of 32): refused, not saturated. */
const FP16_OVERFLOW = 65520;

/** One weight's manifest entry, as tfjs-core's `io.WeightsManifestEntry` spells it. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: "float32" | "int32" | "bool" | "string" | "complex64";
  group?: "model" | "optimizer";
  quantization?: { dtype: "uint8" | "uint16" | "float16"; scale?: number; min?: number };
}

/** A weight that cannot be quantised (a non-finite value, or one binary16 cannot hold). */
export class QuantizeError extends Error {
  override name = "QuantizeError";
}

/** The affine code of a uint8-quantised tensor: value ≈ `q * scale + min`. */
export interface AffineCode {
  bytes: Uint8Array;
  scale: number;
  min: number;
}

/** Round half to even, as numpy's `np.round` does (tfjs-converter's rounding). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The scale and (nudged) minimum tfjs-converter's `_get_affine_quantization_range` picks for
 * values in `[min, max]` (min < max): `scale = (max - min) / 255`; when the range holds 0, the
 * minimum moves by less than half a step so that 0 is a code exactly (zero padding, pruned
 * weights stay exactly 0 after decoding).
 */
export function affineRange(min: number, max: number): { scale: number; min: number; max: number } {
  const scale = (max - min) / UINT8_MAX;
  if (min <= 0 && 0 <= max) {
    const zeroPoint = roundHalfEven(-min / scale);
    const nudged = -zeroPoint * scale;
    return { scale, min: nudged, max: UINT8_MAX * scale + nudged };
  }
  return { scale, min, max };
}

/**
 * Quantises `values` to uint8 codes as tfjs-converter does: a constant tensor is all zeros with
 * `scale: 1, min: value`; an empty one has no bytes and `scale: 1, min: 0`. Throws
 * {@link QuantizeError} naming `name` for a NaN or infinite value.
 */
export function quantizeUint8(values: Float32Array, name: string): AffineCode {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) throw new QuantizeError(`weight ${name} holds ${v}: it cannot be quantised`);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const bytes = new Uint8Array(values.length);
  if (values.length === 0) return { bytes, scale: 1, min: 0 };
  if (lo === hi) return { bytes, scale: 1, min: lo };
  const r = affineRange(lo, hi);
  for (let i = 0; i < values.length; i++) {
    const clipped = Math.min(Math.max(values[i]!, r.min), r.max); // i < values.length
    // The clamp only guards float error at the top of the range: (max − min) / scale is 255 ± ulp.
    bytes[i] = Math.min(UINT8_MAX, Math.max(0, roundHalfEven((clipped - r.min) / r.scale)));
  }
  return { bytes, scale: r.scale, min: r.min };
}

/**
 * Quantises `values` to binary16 (round to nearest, ties to even), little-endian bytes as tfjs
 * reads them through a `Uint16Array`. Throws {@link QuantizeError} for a non-finite value or one
 * that binary16 would round to infinity (use uint8 for such a model).
 */
export function quantizeFloat16(values: Float32Array, name: string): Uint8Array {
  const half = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!; // i < values.length
    if (!Number.isFinite(v) || Math.abs(v) >= FP16_OVERFLOW)
      throw new QuantizeError(`weight ${name} holds ${v}, which float16 cannot hold: quantise to uint8`);
    half[i] = toHalfBits(v);
  }
  return new Uint8Array(half.buffer);
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Quantises every float32 weight of a tfjs weight manifest (`specs`, with their bytes `data`
 * back to back) to `dtype`; weights of other dtypes pass through unchanged, as tfjs-converter
 * leaves them. Returns the new manifest entries and bytes. Throws {@link QuantizeError} when a
 * spec is already quantised or `data` is not as long as the specs say.
 */
export function quantizeWeights(
  specs: readonly WeightSpec[],
  data: Uint8Array,
  dtype: QuantizeDtype,
): { specs: WeightSpec[]; data: Uint8Array } {
  const out: WeightSpec[] = [];
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const spec of specs) {
    if (spec.quantization) throw new QuantizeError(`weight ${spec.name} is already quantised`);
    if (spec.dtype !== "float32" && spec.dtype !== "int32" && spec.dtype !== "bool")
      throw new QuantizeError(`weight ${spec.name} is ${spec.dtype}: flock writes numeric weights only`);
    const bytes = (spec.dtype === "bool" ? 1 : 4) * sizeOf(spec.shape);
    if (at + bytes > data.length)
      throw new QuantizeError(`weight ${spec.name} runs past the end of the weight data`);
    const raw = data.slice(at, at + bytes); // a copy: aligned for the Float32Array view
    at += bytes;
    if (spec.dtype !== "float32") {
      out.push({ ...spec, shape: [...spec.shape] });
      parts.push(raw);
      continue;
    }
    const values = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    if (dtype === "float16") {
      out.push({ ...spec, shape: [...spec.shape], quantization: { dtype: "float16" } });
      parts.push(quantizeFloat16(values, spec.name));
    } else {
      const code = quantizeUint8(values, spec.name);
      out.push({
        ...spec,
        shape: [...spec.shape],
        quantization: { dtype, scale: code.scale, min: code.min },
      });
      parts.push(code.bytes);
    }
  }
  if (at !== data.length)
    throw new QuantizeError(`the weight data holds ${data.length} bytes, the manifest ${at}`);
  return { specs: out, data: concat(parts) };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
