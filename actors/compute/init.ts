import type { WeightInfo } from "./models.js";
import { createPrng } from "./prng.js";

/**
 * Deterministic initial parameters: one mulberry32 stream seeded with `seed` walks the weights
 * in flat order; a glorot-uniform weight draws `(2u - 1) · sqrt(6 / (fanIn + fanOut))` per value,
 * zeros and ones draw nothing. Only exactly rounded operations are used (`Math.sqrt`, + − × ÷),
 * so the vector is bit-identical on every machine.
 */
export function initialParams(
  weights: readonly WeightInfo[],
  paramCount: number,
  seed: number,
): Float32Array {
  const out = new Float32Array(paramCount);
  const rng = createPrng(seed);
  for (const w of weights) {
    if (w.init === "ones") out.fill(1, w.offset, w.offset + w.size);
    if (w.init !== "glorot-uniform") continue;
    const [fanIn, fanOut] = fans(w.shape);
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    for (let i = 0; i < w.size; i++) out[w.offset + i] = (2 * rng.next() - 1) * limit;
  }
  return out;
}

/** Keras' fan computation: the last two axes are (in, out), the rest form the receptive field. */
function fans(shape: readonly number[]): [number, number] {
  const [only] = shape;
  if (shape.length === 1 && only !== undefined) return [only, only];
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return [(shape.at(-2) ?? 1) * receptive, (shape.at(-1) ?? 1) * receptive];
}
