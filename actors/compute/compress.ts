/**
 * Lossy encodings of gradient vectors for the wire, and the error feedback that makes them lose
 * nothing over time (as in 1-bit SGD, DeepSpeed's 1-bit Adam, PowerSGD): the trainer adds what a
 * step's encoding left out to the next step's gradient.
 *
 * - `fp16`: IEEE 754 binary16, little-endian, 2 bytes a value; round to nearest, ties to even;
 *   a finite value beyond ±65504 is clamped to ±65504 (an infinity would poison the sum).
 * - `int8`: blocks of {@link INT8_BLOCK} values, each with a float32 scale `max|x| / 127`;
 *   payload = the scales (float32 little-endian, one per block), then one int8 per value in
 *   −127..127 (symmetric: −128 is never written and a payload holding it is malformed).
 *
 * Pure: no I/O, deterministic, so every reducer decodes the same bytes to the same floats.
 * @module
 */

/** The lossy encodings (the job spec's `compression` less `none`). */
export type Encoding = "fp16" | "int8";

/** Values per int8 block (one scale each). */
export const INT8_BLOCK = 256;
/** Largest finite binary16 value; finite values beyond it are clamped to it. */
export const FP16_MAX = 65504;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Whether this platform stores typed arrays little-endian (the wire order): then views are used. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The binary16 bits of `x` (rounded to nearest even, overflow clamped, NaN and ±∞ kept). */
export function toHalfBits(x: number): number {
  f32[0] = x;
  return halfOfBits(u32[0]!);
}

/** {@link toHalfBits} of the float32 with bits `bits`. */
function halfOfBits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 112; // the binary16 biased exponent (127 − 15)
  if (e >= 0x1f) return sign | 0x7bff;
  if (e <= 0) {
    // A binary16 subnormal (or zero): value = m · 2⁻²⁴, m = mantissa with its implicit bit >> shift.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    return sign | roundShift(full, shift);
  }
  // A carry out of the mantissa moves into the exponent, which is what rounding up should do.
  const h = (e << 10) + roundShift(mant, 13);
  return sign | (h >= 0x7c00 ? 0x7bff : h);
}

/** `v >> shift`, rounded to nearest with ties to even. */
function roundShift(v: number, shift: number): number {
  const q = v >>> shift;
  const rem = v & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rem > half || (rem === half && (q & 1) === 1) ? q + 1 : q;
}

let halfTable: Float32Array | undefined;

/** The float32 value of every binary16 bit pattern (built once: 256 KiB). */
function halves(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (exp === 0) t[h] = sign * m * 2 ** -24;
    else if (exp === 0x1f) t[h] = m ? NaN : sign * Infinity;
    else t[h] = sign * (1 + m / 1024) * 2 ** (exp - 15);
  }
  return (halfTable = t);
}

/** The value of binary16 bits `h` (exact in float32). */
export function fromHalfBits(h: number): number {
  return halves()[h & 0xffff]!;
}

/** Bytes of the payload of `length` values in `encoding`. */
export function encodedBytes(encoding: Encoding, length: number): number {
  return encoding === "fp16" ? 2 * length : 4 * Math.ceil(length / INT8_BLOCK) + length;
}

/**
 * Encodes `x` and writes what the payload decodes to into `decoded` (same length as `x`), so a
 * caller that keeps a residual needs no second pass.
 */
export function encode(encoding: Encoding, x: Float32Array, decoded?: Float32Array): Uint8Array {
  return encoding === "fp16" ? encodeFp16(x, decoded) : encodeInt8(x, decoded);
}

function encodeFp16(x: Float32Array, decoded?: Float32Array): Uint8Array {
  const n = x.length;
  const out = new Uint8Array(2 * n);
  const t = halves();
  // The float32 bits, read in place (a Float32Array's offset is always a multiple of 4).
  const bits = new Uint32Array(x.buffer, x.byteOffset, n);
  if (LITTLE_ENDIAN) {
    const h16 = new Uint16Array(out.buffer);
    for (let i = 0; i < n; i++) {
      const v = bits[i]!;
      const a = v & 0x7fffffff;
      // The common case inline, 2⁻¹⁴ ≤ |x| < 65520 (a binary16 normal after rounding): rebias the
      // exponent, add just under half an ulp plus the odd bit (ties to even), drop 13 bits.
      h16[i] =
        a >= 0x38800000 && a < 0x477ff000
          ? ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13) | ((v >>> 16) & 0x8000)
          : halfOfBits(v);
    }
    if (decoded) for (let i = 0; i < n; i++) decoded[i] = t[h16[i]!]!;
    return out;
  }
  for (let i = 0; i < n; i++) {
    const h = halfOfBits(bits[i]!);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
    if (decoded) decoded[i] = t[h]!;
  }
  return out;
}

function encodeInt8(x: Float32Array, decoded?: Float32Array): Uint8Array {
  const n = x.length;
  const blocks = Math.ceil(n / INT8_BLOCK);
  const out = new Uint8Array(4 * blocks + n);
  const scales = new DataView(out.buffer, 0, 4 * blocks);
  const q = new Int8Array(out.buffer, 4 * blocks, n);
  for (let b = 0; b < blocks; b++) {
    const from = b * INT8_BLOCK;
    const to = Math.min(n, from + INT8_BLOCK);
    let max = 0;
    // Non-finite values do not set the scale (they would make every other value in the block 0).
    for (let i = from; i < to; i++) {
      const a = Math.abs(x[i]!);
      if (a > max && a !== Infinity) max = a;
    }
    const scale = Math.fround(max / 127);
    scales.setFloat32(4 * b, scale, true);
    const inverse = scale > 0 ? 1 / scale : 0;
    for (let i = from; i < to; i++) {
      const v = x[i]!;
      // NaN becomes 0, ±∞ the block's extreme; symmetric rounding so ±x encode to ±q.
      const k = v === v ? Math.min(127, Math.round(Math.abs(v) * inverse)) : 0;
      const s = v < 0 ? -k : k;
      q[i] = s;
      if (decoded) decoded[i] = Math.fround(s * scale);
    }
  }
  return out;
}

/**
 * Decodes a payload of `length` values into `into` (a new array when absent). Returns undefined,
 * never throws, when the payload is malformed: wrong size, a scale that is negative or not
 * finite, or an int8 of −128. Allocates at most `length` floats, and only once the size checks.
 */
export function decode(
  encoding: Encoding,
  bytes: Uint8Array,
  length: number,
  into?: Float32Array,
): Float32Array | undefined {
  if (!Number.isSafeInteger(length) || length < 0 || bytes.length !== encodedBytes(encoding, length))
    return undefined;
  if (into && into.length !== length) return undefined;
  return encoding === "fp16" ? decodeFp16(bytes, length, into) : decodeInt8(bytes, length, into);
}

function decodeFp16(bytes: Uint8Array, length: number, into?: Float32Array): Float32Array {
  const out = into ?? new Float32Array(length);
  const t = halves();
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
    const h16 = new Uint16Array(bytes.buffer, bytes.byteOffset, length);
    for (let i = 0; i < length; i++) out[i] = t[h16[i]!]!;
    return out;
  }
  for (let i = 0; i < length; i++) out[i] = t[bytes[2 * i]! | (bytes[2 * i + 1]! << 8)]!;
  return out;
}

function decodeInt8(bytes: Uint8Array, length: number, into?: Float32Array): Float32Array | undefined {
  const blocks = Math.ceil(length / INT8_BLOCK);
  // DataView: the bytes may be a view at any offset of a received buffer (no alignment).
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < blocks; b++) {
    const s = view.getFloat32(4 * b, true);
    if (!(s >= 0 && s !== Infinity)) return undefined;
  }
  const q = new Int8Array(bytes.buffer, bytes.byteOffset + 4 * blocks, length);
  for (let i = 0; i < length; i++) if (q[i] === -128) return undefined;
  const out = into ?? new Float32Array(length);
  for (let b = 0; b < blocks; b++) {
    const scale = view.getFloat32(4 * b, true);
    const to = Math.min(length, (b + 1) * INT8_BLOCK);
    for (let i = b * INT8_BLOCK; i < to; i++) out[i] = Math.fround(q[i]! * scale);
  }
  return out;
}

/**
 * Error feedback for one vector (one trainer's slice for one reducer): keeps the residual `r`
 * of what earlier encodings left out. {@link encode} sends `c = Q(g + r)` and keeps
 * `r ← (g + r) − deQ(c)`, so the sum of what was decoded over steps differs from the sum of the
 * true gradients by the last residual only (at most one quantum), instead of drifting.
 */
export class ErrorFeedback {
  /** The residual; a view of a larger vector when the caller passes one. */
  readonly residual: Float32Array;

  /**
   * @param encoding - the lossy encoding.
   * @param residual - the residual to keep (a view works: it is updated in place), or its length.
   */
  constructor(
    readonly encoding: Encoding,
    residual: Float32Array | number,
  ) {
    this.residual = typeof residual === "number" ? new Float32Array(residual) : residual;
  }

  /** Encodes `g + r` (g of the residual's length) and keeps what the encoding left out. */
  encode(g: Float32Array): Uint8Array {
    const r = this.residual;
    if (g.length !== r.length)
      throw new RangeError(`gradient of ${g.length} values, residual of ${r.length}`);
    const sum = new Float32Array(g.length);
    for (let i = 0; i < sum.length; i++) sum[i] = g[i]! + r[i]!;
    // What the reducers will decode goes into r, then r becomes what it left out.
    const bytes = encode(this.encoding, sum, r);
    for (let i = 0; i < r.length; i++) {
      const left = sum[i]! - r[i]!;
      // A non-finite gradient must not poison every later step through the residual.
      r[i] = Number.isFinite(left) ? left : 0;
    }
    return bytes;
  }
}
