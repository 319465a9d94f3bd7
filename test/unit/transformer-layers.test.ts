import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type * as tfc from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { selectBackend, type Tf } from "../../actors/compute/backend.js";
import {
  ClsPool,
  LayerNorm,
  PositionDense,
  SelfAttention,
  TokenEmbedding,
} from "../../actors/compute/transformer/index.js";
import { gradCheck, pseudoRandom, seedVariables, type GradCheckResult } from "./transformer-gradcheck.js";

// Every backend flock may choose in a trainer's worker thread without tfjs-node.
const BACKENDS = ["wasm", "cpu"] as const;

/** Fails on any coordinate out of tolerance; reports the worst |analytic − numeric| as a diagnostic. */
function assertPasses(t: TestContext, what: string, result: GradCheckResult): void {
  t.diagnostic(
    `${what}: ${result.checked} coordinates, max |analytic − numeric| ${result.maxAbsError.toExponential(2)}`,
  );
  assert.ok(result.checked > 0, `${what}: nothing checked`);
  assert.deepEqual(result.failures, [], `${what}: worst ${JSON.stringify(result.worst)}`);
}

/** sum(out ⊙ R) for a fixed R: a loss whose gradient reaches every output element differently. */
function weightedSum(tf: Tf, out: tfc.Tensor, seed: number): tfc.Scalar {
  return tf.sum(tf.mul(out, pseudoRandom(tf, out.shape, seed)));
}

function layerVariables(layer: tfl.layers.Layer): tfc.Variable[] {
  // A LayerVariable's read() is its underlying tf.Variable (the engine relies on the same).
  return layer.trainableWeights.map((w) => w.read() as tfc.Variable);
}

for (const backend of BACKENDS) {
  test(`${backend}: token embedding and its tied projection have correct gradients`, async (t) => {
    const { tf } = await selectBackend(backend);
    const layer = new TokenEmbedding({ vocabulary: 5, maxLen: 4, width: 3, outputBias: true, name: "tok" });
    // Ids repeat (3 twice, 1 twice): their rows' gradients must add up (the ScatterNd gradient).
    const ids = tf.tensor2d([
      [1, 3, 3, 0],
      [2, 1, 0, 0],
    ]);
    layer.apply(ids);
    const vars = layerVariables(layer);
    seedVariables(tf, vars, 41);
    assert.deepEqual(
      layer.trainableWeights.map((w) => w.originalName),
      ["tok/embeddings", "tok/position_embeddings", "tok/output_bias"],
    );
    const embed = gradCheck(tf, () => weightedSum(tf, layer.apply(ids) as tfc.Tensor, 7), vars.slice(0, 2));
    assertPasses(t, "embed", embed);
    const hidden = tf.variable(pseudoRandom(tf, [2, 4, 3], 11));
    const [table, , bias] = vars;
    assert.ok(table && bias);
    const project = gradCheck(tf, () => weightedSum(tf, layer.apply(hidden) as tfc.Tensor, 13), [
      table,
      bias,
      hidden,
    ]);
    assertPasses(t, "project", project);
    layer.dispose();
  });

  test(`${backend}: self-attention has correct gradients for its weights and its input`, async (t) => {
    const { tf } = await selectBackend(backend);
    const layer = new SelfAttention({ width: 6, heads: 2, name: "att" });
    const hidden = tf.variable(pseudoRandom(tf, [2, 4, 6], 3));
    const ids = tf.tensor2d([
      [1, 4, 2, 0],
      [1, 2, 3, 5],
    ]);
    layer.apply([hidden, ids]);
    seedVariables(tf, layerVariables(layer), 43);
    const result = gradCheck(tf, () => weightedSum(tf, layer.apply([hidden, ids]) as tfc.Tensor, 5), [
      ...layerVariables(layer),
      hidden,
    ]);
    assertPasses(t, "attention", result);
    assert.equal(result.checked, 4 * (36 + 6) + 48);
    layer.dispose();
  });

  test(`${backend}: position-wise dense (gelu, tanh), layer norm and [CLS] pool have correct gradients`, async (t) => {
    const { tf } = await selectBackend(backend);
    for (const activation of ["gelu", "tanh"] as const) {
      const layer = new PositionDense({ inputWidth: 4, units: 5, activation, name: `ffn_${activation}` });
      const x = tf.variable(pseudoRandom(tf, [2, 3, 4], 17));
      layer.apply(x);
      seedVariables(tf, layerVariables(layer), 47);
      const r = gradCheck(tf, () => weightedSum(tf, layer.apply(x) as tfc.Tensor, 19), [
        ...layerVariables(layer),
        x,
      ]);
      assertPasses(t, activation, r);
      layer.dispose();
    }
    // flock's layer norm on [batch, len, width], as the encoder uses it; equal to stock's.
    const norm = new LayerNorm({ width: 4, name: "ln" });
    const y = tf.variable(pseudoRandom(tf, [2, 3, 4], 23));
    norm.apply(y);
    seedVariables(tf, layerVariables(norm), 53);
    assertPasses(
      t,
      "layer norm",
      gradCheck(tf, () => weightedSum(tf, norm.apply(y) as tfc.Tensor, 29), [...layerVariables(norm), y]),
    );
    const stock = tfl.layers.layerNormalization({ axis: -1, epsilon: 1e-5, name: "ln_stock" });
    stock.apply(y);
    stock.setWeights(norm.getWeights());
    const ours = Float32Array.from((norm.apply(y) as tfc.Tensor).dataSync());
    const theirs = Float32Array.from((stock.apply(y) as tfc.Tensor).dataSync());
    const worst = ours.reduce((m, v, i) => Math.max(m, Math.abs(v - (theirs[i] ?? NaN))), 0);
    assert.ok(worst < 1e-5, `flock's layer norm and stock's differ by ${worst}`);
    const pool = new ClsPool({ name: "cls" });
    const z = tf.variable(pseudoRandom(tf, [2, 3, 4], 31));
    assertPasses(
      t,
      "cls pool",
      gradCheck(tf, () => weightedSum(tf, pool.apply(z) as tfc.Tensor, 37), [z]),
    );
  });

  test(`${backend}: attention outputs at real tokens do not depend on padded positions`, async () => {
    const { tf } = await selectBackend(backend);
    const layer = new SelfAttention({ width: 8, heads: 2, name: "att_mask" });
    const ids = tf.tensor2d([[1, 7, 3, 0, 0, 0]]);
    const real = pseudoRandom(tf, [1, 3, 8], 41);
    const withPads = (seed: number) => tf.concat([real, pseudoRandom(tf, [1, 3, 8], seed, 5)], 1);
    const a = tf.slice(layer.apply([withPads(43), ids]) as tfc.Tensor, [0, 0, 0], [1, 3, 8]);
    const b = tf.slice(layer.apply([withPads(47), ids]) as tfc.Tensor, [0, 0, 0], [1, 3, 8]);
    assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
    // Without the mask the padded positions would change them: the test can fail.
    const unmasked = tf.tensor2d([[1, 7, 3, 4, 4, 4]]);
    const c = tf.slice(layer.apply([withPads(43), unmasked]) as tfc.Tensor, [0, 0, 0], [1, 3, 8]);
    const d = tf.slice(layer.apply([withPads(47), unmasked]) as tfc.Tensor, [0, 0, 0], [1, 3, 8]);
    assert.notDeepEqual(Array.from(c.dataSync()), Array.from(d.dataSync()));
    layer.dispose();
  });
}

test("layer configs are checked when constructed (a config may come from the wire)", () => {
  assert.throws(() => new SelfAttention({ width: 6, heads: 4 }), /heads \(4\) must divide width \(6\)/);
  assert.throws(
    () => new TokenEmbedding({ vocabulary: 1e9, maxLen: 4, width: 3 }),
    /vocabulary must be an integer/,
  );
  assert.throws(() => new PositionDense({ inputWidth: 4, units: 2.5 }), /units must be an integer/);
  const bad: object = { inputWidth: 4, units: 2, activation: "softmax" };
  assert.throws(() => tfl.layers.Layer.fromConfig(PositionDense, { ...bad }), /activation must be one of/);
});
