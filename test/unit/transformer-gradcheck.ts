import type * as tfc from "@tensorflow/tfjs-core";
import type { Tf } from "../../actors/compute/backend.js";

/**
 * Finite-difference gradient check in float32 (shared by the transformer tests). Central
 * differences with step `h`; a coordinate passes when |analytic − numeric| ≤ atol + rtol·|numeric|.
 * With h = 1e-2 the truncation error is h²/6·f''' ≈ 2e-5·f''' and the float32 rounding of a loss of
 * magnitude ~1-10 (≈ 1e-6) divided by 2h is ≈ 5e-5; the tolerances leave a margin over those.
 */
export interface GradCheckOptions {
  h?: number;
  atol?: number;
  rtol?: number;
  /**
   * Richardson extrapolation, (4·D(h/2) − D(h)) / 3: truncation error O(h⁴) instead of O(h²), for
   * losses that curve within the step (a whole model's: layer norm, softmax, gelu in series).
   */
  richardson?: boolean;
  /** Most coordinates checked per variable (evenly spaced); default all. */
  perVariable?: number;
}

/** What a check found: the worst coordinate and how many were checked. */
export interface GradCheckResult {
  checked: number;
  /** The coordinate closest to (or furthest past) its tolerance. */
  worst: { variable: string; index: number; analytic: number; numeric: number; excess: number };
  /** Largest |analytic − numeric| over all coordinates. */
  maxAbsError: number;
  failures: string[];
}

/** Compares the gradient of `loss` with respect to `vars` with central differences. */
export function gradCheck(
  tf: Tf,
  loss: () => tfc.Scalar,
  vars: tfc.Variable[],
  options: GradCheckOptions = {},
): GradCheckResult {
  const { h = 1e-2, atol = 1e-3, rtol = 1e-2, perVariable = Infinity, richardson = false } = options;
  const analytic = tf.tidy(() => {
    const { grads } = tf.variableGrads(loss, vars);
    return vars.map((v) => Float32Array.from(grads[v.name]?.dataSync() ?? []));
  });
  const value = (): number => tf.tidy(() => loss().dataSync()[0] ?? NaN);
  const result: GradCheckResult = {
    checked: 0,
    worst: { variable: "", index: -1, analytic: 0, numeric: 0, excess: -Infinity },
    maxAbsError: 0,
    failures: [],
  };
  vars.forEach((v, vi) => {
    const base = Float32Array.from(v.dataSync());
    const step = Math.max(1, Math.floor(base.length / Math.min(perVariable, base.length)));
    for (let i = 0; i < base.length; i += step) {
      const at = (x: number): number => {
        const values = base.slice();
        values[i] = x;
        v.assign(tf.tensor(values, v.shape));
        return value();
      };
      const b = base[i] ?? 0;
      const central = (step: number): number => (at(b + step) - at(b - step)) / (2 * step);
      const numeric = richardson ? (4 * central(h / 2) - central(h)) / 3 : central(h);
      const a = analytic[vi]?.[i] ?? NaN;
      const excess = Math.abs(a - numeric) - (atol + rtol * Math.abs(numeric));
      result.checked++;
      result.maxAbsError = Math.max(result.maxAbsError, Math.abs(a - numeric));
      if (!(excess <= result.worst.excess))
        result.worst = { variable: v.name, index: i, analytic: a, numeric, excess };
      if (!(excess <= 0)) result.failures.push(`${v.name}[${i}]: analytic ${a}, numeric ${numeric}`);
    }
    v.assign(tf.tensor(base, v.shape));
  });
  return result;
}

/** A deterministic tensor of uniform values in [-scale, scale) (mulberry32-free: a simple LCG suffices here). */
export function pseudoRandom(tf: Tf, shape: number[], seed: number, scale = 1): tfc.Tensor {
  let state = seed >>> 0 || 1;
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = (state / 4294967296) * 2 * scale - scale;
  }
  return tf.tensor(values, shape);
}

/**
 * Sets every variable from a seed, so a gradient check is the same on every run (tfjs's
 * initializers draw from an unseeded generator). Embedding tables at ±0.5, matrices at glorot
 * scale by their first dimension, layer-norm gains near 1, other vectors at ±0.1.
 */
export function seedVariables(tf: Tf, vars: tfc.Variable[], seed: number): void {
  vars.forEach((v, i) => {
    const fanIn = v.shape.length > 1 ? (v.shape[0] ?? 1) : 1;
    const scale = v.name.includes("embeddings") ? 0.5 : v.shape.length > 1 ? Math.sqrt(3 / fanIn) : 0.1;
    tf.tidy(() => {
      const values = pseudoRandom(tf, v.shape, seed + i, scale);
      v.assign(v.name.endsWith("gamma") ? tf.add(values, 1) : values);
    });
  });
}
