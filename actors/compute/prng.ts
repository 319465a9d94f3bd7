/**
 * A small seeded PRNG (mulberry32). Pure 32-bit integer arithmetic, so the stream is the same on
 * every machine and engine; used wherever the compute layer needs randomness (initialisation,
 * dataset ordering, baseline batch order). Math.random is never used.
 */

/** A source of uniform numbers in [0, 1), replayable from its seed. */
export interface Prng {
  /** The next uniform number in [0, 1) (32 bits of resolution). */
  next(): number;
  /** The next uniform integer in [0, n). */
  nextInt(n: number): number;
}

/** Creates a mulberry32 generator; `seed` is reduced to 32 bits. */
export function createPrng(seed: number): Prng {
  let state = seed >>> 0;
  const nextU32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    next: () => nextU32() / 4294967296,
    nextInt: (n) => Math.floor((nextU32() / 4294967296) * n),
  };
}

/** A 32-bit integer hash (murmur3's finaliser); spreads consecutive integers evenly. */
export function hash32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Fisher–Yates shuffle of `0..n-1` driven by a seeded generator. */
export function seededPermutation(n: number, seed: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const rng = createPrng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    // i < n and j <= i: both in range.
    const tmp = out[i]!;
    out[i] = out[j]!;
    out[j] = tmp;
  }
  return out;
}
