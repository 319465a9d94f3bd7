import { test } from "node:test";
import assert from "node:assert/strict";
import type * as tfc from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { selectBackend } from "../../actors/compute/backend.js";
import { buildModel, knownModels, resolveModelConfig } from "../../actors/compute/models.js";
import { InvalidModelConfigError } from "../../actors/compute/errors.js";
import { TransformerSpec, transformerParams } from "../../actors/compute/transformer/index.js";
import { MAX_MODEL_PARAMETERS, modelTooLarge } from "../../actors/job/model-bounds.js";
import { parseJobSpec } from "../../actors/job/spec.js";
import { gradCheck, pseudoRandom, seedVariables } from "./transformer-gradcheck.js";

const tiny = { layers: 1, heads: 2, width: 8, maxLen: 6, vocabulary: 12, ffn: 16 };
const classifier = { name: "text-transformer", ...tiny };
const mlm = { name: "text-transformer-mlm", ...tiny };
const tinyData = { name: "tiny", inputSize: 6, numClasses: 2, tokens: { maxLen: 6, vocabulary: 12 } };
// [CLS]=1 ... [SEP]=2, then [PAD]=0.
const ids = [
  [1, 5, 7, 2, 0, 0],
  [1, 3, 3, 9, 11, 2],
];

/** A model from a spec's layers config, as tfjs-layers reads a job file's JSON (no shape checks). */
async function modelOf(spec: Record<string, unknown>): Promise<tfl.LayersModel> {
  const topology = JSON.parse(JSON.stringify(resolveModelConfig(spec)));
  return tfl.models.modelFromJSON({ modelTopology: topology });
}

function outputOf(model: tfl.LayersModel, x: tfc.Tensor): Float32Array {
  return Float32Array.from((model.predict(x) as tfc.Tensor).dataSync());
}

for (const backend of ["wasm", "cpu"] as const) {
  test(`${backend}: both models' gradients match finite differences end to end`, async (t) => {
    const { tf } = await selectBackend(backend);
    for (const spec of [classifier, mlm]) {
      const model = await modelOf(spec);
      const x = tf.tensor2d(ids);
      const shape = (model.outputs[0]?.shape ?? []).map((d) => d ?? 2);
      const weights = pseudoRandom(tf, shape, 3);
      const vars = model.trainableWeights.map((w) => w.read() as tfc.Variable);
      // Every weight from a seed (see seedVariables): tfjs's unseeded draws once in some hundreds
      // put a coordinate where the loss curves within the step. Embeddings at the engine's glorot
      // scale (≈ 0.5 here, not tfjs's 0.02: layer norm of tiny vectors curves within the step).
      seedVariables(tf, vars, 100);
      const r = gradCheck(tf, () => tf.sum(tf.mul(model.apply(x) as tfc.Tensor, weights)), vars, {
        perVariable: 6,
        richardson: true,
      });
      t.diagnostic(
        `${spec.name}: ${r.checked} coordinates, max |analytic − numeric| ${r.maxAbsError.toExponential(2)}`,
      );
      assert.deepEqual(r.failures, []);
      model.dispose();
    }
  });
}

test("registered names, sizes and parameter counts; the MLM head ties the embedding matrix", async () => {
  await selectBackend("wasm");
  assert.ok(knownModels().includes("text-transformer") && knownModels().includes("text-transformer-mlm"));
  const named = await buildModel("text-transformer", {
    name: "t",
    inputSize: 64,
    numClasses: 2,
    tokens: { maxLen: 64, vocabulary: 2000 },
  });
  assert.equal(named.paramCount, transformerParams(TransformerSpec.parse({ name: "text-transformer" })));
  const init = Object.fromEntries(named.weights.map((w) => [w.name, w.init]));
  assert.equal(init["token/embeddings"], "glorot-uniform");
  assert.equal(init["token/position_embeddings"], "glorot-uniform");
  assert.equal(init["block0_attention_norm/gamma"], "ones");
  assert.equal(init["block0_attention/query_bias"], "zeros");
  named.model.dispose();
  const sized = await buildModel(classifier, tinyData);
  assert.equal(sized.paramCount, transformerParams(TransformerSpec.parse(classifier)));
  sized.model.dispose();
  const lm = await modelOf(mlm);
  const tables = lm.trainableWeights.filter((w) => w.shape.join() === "12,8");
  assert.deepEqual(
    tables.map((w) => w.originalName),
    ["token/embeddings"],
  );
  assert.equal(
    lm.getLayer("token").inboundNodes.length,
    2,
    "the token layer is called twice: embed and project",
  );
  const count = lm.trainableWeights.reduce(
    (n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 0), 1),
    0,
  );
  assert.equal(count, transformerParams(TransformerSpec.parse(mlm)));
  assert.deepEqual(lm.outputs[0]?.shape, [null, 6, 12]);
  lm.dispose();
  assert.throws(
    () => resolveModelConfig({ name: "text-transformer", width: 8, heads: 3 }),
    InvalidModelConfigError,
  );
  assert.throws(() => resolveModelConfig({ name: "text-transformer", depth: 3 }), InvalidModelConfigError);
});

test("serialisation round trip: toJSON → a job file's config → the same outputs", async () => {
  const { tf } = await selectBackend("wasm");
  for (const spec of [classifier, mlm]) {
    const first = await modelOf(spec);
    const json = JSON.parse(JSON.stringify(first.toJSON(null, false)));
    assert.equal(modelTooLarge(json), undefined);
    const second = await modelOf(json);
    second.setWeights(first.getWeights());
    const x = tf.tensor2d(ids);
    assert.deepEqual(outputOf(second, x), outputOf(first, x));
    assert.deepEqual(second.toJSON(null, false), first.toJSON(null, false));
    first.dispose();
    second.dispose();
  }
  // A job file may carry the config itself.
  const exported = JSON.parse(JSON.stringify(resolveModelConfig(classifier)));
  const job = parseJobSpec({
    model: exported,
    dataset: "spam-assassin",
    epochs: 1,
    globalBatch: 8,
    optimizer: { name: "adam", lr: 1e-3 },
  });
  const built = await buildModel(job.model, tinyData);
  assert.equal(built.paramCount, transformerParams(TransformerSpec.parse(classifier)));
  built.model.dispose();
});

test("the classifier's output does not depend on padded positions", async () => {
  const { tf } = await selectBackend("cpu");
  const built = await buildModel(classifier, tinyData);
  const x = tf.tensor2d([ids[0] ?? []]);
  const before = outputOf(built.model, x);
  // Change what only padded positions read: the [PAD] row and the position rows 4 and 5.
  const token = built.model.getLayer("token");
  const [table, positions] = token.getWeights();
  assert.ok(table && positions);
  const t2 = table.arraySync() as number[][];
  const p2 = positions.arraySync() as number[][];
  t2[0] = t2[0]?.map((v) => v + 3) ?? [];
  p2[4] = p2[4]?.map((v) => v - 2) ?? [];
  p2[5] = p2[5]?.map((v) => v * 5) ?? [];
  token.setWeights([tf.tensor(t2), tf.tensor(p2)]);
  assert.deepEqual(outputOf(built.model, x), before);
  // A real position's row does change it: the comparison can fail.
  p2[1] = p2[1]?.map((v) => v + 1) ?? [];
  token.setWeights([tf.tensor(t2), tf.tensor(p2)]);
  assert.notDeepEqual(outputOf(built.model, x), before);
  built.model.dispose();
});

test("the job spec bounds a transformer by its exact parameter count", () => {
  const sizes = { name: "text-transformer", layers: 1, heads: 2, width: 256, maxLen: 16, ffn: 256 };
  const base = transformerParams(TransformerSpec.parse({ ...sizes, vocabulary: 8 }));
  // The count grows by `width` per vocabulary entry: the largest vocabulary that fits.
  const vocabulary = 8 + Math.floor((MAX_MODEL_PARAMETERS - base) / 256);
  assert.equal(modelTooLarge({ ...sizes, vocabulary }), undefined);
  assert.match(modelTooLarge({ ...sizes, vocabulary: vocabulary + 1 }) ?? "", /at most 16000000/);
  assert.match(modelTooLarge({ ...sizes, vocabulary: 1e6 }) ?? "", /vocabulary/);
  // A hand-written config is sized from the sizes its layers state.
  const huge = {
    class_name: "Model",
    config: {
      layers: [
        { class_name: "InputLayer", config: { batch_input_shape: [null, 4] } },
        { class_name: "FlockPositionDense", config: { input_width: 16384, units: 16384 } },
      ],
    },
  };
  assert.match(modelTooLarge(huge) ?? "", /parameters/);
  const bogus = { class_name: "Model", config: { layers: [{ class_name: "FlockBogus", config: {} }] } };
  assert.match(modelTooLarge(bogus) ?? "", /not supported/);
});
