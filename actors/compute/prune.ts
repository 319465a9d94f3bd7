import type { WeightSpec } from "./quantize.js";

/**
 * Magnitude pruning of a trained model's kernels: in each kernel, the `sparsity` fraction of
 * weights with the smallest magnitude become exactly 0 (biases and other weights are kept: they
 * are few and a zero bias shifts every output). Deterministic: ties are broken by position, so
 * the same weights give the same mask everywhere. uint8 quantisation keeps the zeros exact
 * (its zero point is a code), as float16 does. Pure: no tfjs, no I/O.
 * @module
 */

/** Whether a weight is a kernel (`dense/kernel`, `conv/depthwise_kernel`, `lstm/recurrent_kernel`, ...). */
export function isPrunable(name: string): boolean {
  const leaf = name.slice(name.lastIndexOf("/") + 1);
  return leaf === "kernel" || leaf.endsWith("_kernel");
}

/** A copy of `values` with its `floor(sparsity × n)` smallest-magnitude entries set to 0. */
export function magnitudePrune(values: Float32Array, sparsity: number): Float32Array {
  if (!(sparsity >= 0 && sparsity < 1)) throw new RangeError(`sparsity must be in [0, 1), got ${sparsity}`);
  const k = Math.floor(sparsity * values.length);
  const order = Array.from(values.keys()).sort(
    (a, b) => Math.abs(values[a]!) - Math.abs(values[b]!) || a - b, // a, b < values.length
  );
  const out = values.slice();
  for (let i = 0; i < k; i++) out[order[i]!] = 0; // i < k ≤ order.length
  return out;
}

/** Zeros and values of the kernels of a float32 weight manifest: their sparsity is `zeros / values`. */
export interface Sparsity {
  zeros: number;
  values: number;
}

/** Walks the float32 kernels of `specs` over `data`, handing each a writable view (a copy of `data`). */
function eachKernel(
  specs: readonly WeightSpec[],
  data: Uint8Array,
  visit: (values: Float32Array) => void,
): Uint8Array {
  const copy = new Uint8Array(data); // aligned at 0, so every float32 weight's view is aligned too
  let at = 0;
  for (const spec of specs) {
    if (spec.quantization) throw new RangeError(`weight ${spec.name} is quantised: prune float32 weights`);
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = (spec.dtype === "bool" ? 1 : 4) * size;
    if (at + bytes > copy.length)
      throw new RangeError(`weight ${spec.name} runs past the end of the weight data`);
    if (spec.dtype === "float32" && isPrunable(spec.name) && at % 4 === 0)
      visit(new Float32Array(copy.buffer, at, size));
    at += bytes;
  }
  return copy;
}

/** The weight data with every kernel magnitude-pruned to `sparsity`, and the sparsity reached. */
export function pruneWeights(
  specs: readonly WeightSpec[],
  data: Uint8Array,
  sparsity: number,
): { data: Uint8Array; sparsity: Sparsity } {
  const pruned = eachKernel(specs, data, (v) => v.set(magnitudePrune(v, sparsity)));
  return { data: pruned, sparsity: sparsityOf(specs, pruned) };
}

/** How many of the kernels' values are exactly 0. */
export function sparsityOf(specs: readonly WeightSpec[], data: Uint8Array): Sparsity {
  const s: Sparsity = { zeros: 0, values: 0 };
  eachKernel(specs, data, (v) => {
    s.values += v.length;
    for (const x of v) if (x === 0) s.zeros++;
  });
  return s;
}
