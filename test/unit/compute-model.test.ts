import { test } from "node:test";
import assert from "node:assert/strict";
import {
  buildModel,
  ComputeEngine,
  InvalidModelConfigError,
  knownModels,
  ModelDataMismatchError,
  modelRequirement,
  resolveModelConfig,
  selectBackend,
  UnknownModelError,
  type LayersModelConfig,
} from "../../actors/compute/index.js";

// buildModel needs an active backend; the engine selects one itself.
await selectBackend("wasm");

const mnistShape = { name: "mnist", inputSize: 784, numClasses: 10 };

/** A softmax regression in tfjs-layers' JSON form, as a job spec would carry it. */
const softmaxRegression: LayersModelConfig = {
  class_name: "Sequential",
  config: {
    name: "softmax-regression",
    layers: [
      { class_name: "Dense", config: { units: 10, activation: "softmax", batch_input_shape: [null, 784] } },
    ],
  },
};

test("built-in models and their sizes", async () => {
  assert.deepEqual(knownModels(), [
    "mnist-cnn",
    "mnist-mlp",
    "spam-bow",
    "text-transformer",
    "text-transformer-mlm",
  ]);
  const mlp = await buildModel("mnist-mlp", mnistShape);
  assert.equal(mlp.paramCount, 784 * 128 + 128 + 128 * 10 + 10);
  assert.deepEqual(
    mlp.weights.map((w) => w.init),
    ["glorot-uniform", "zeros", "glorot-uniform", "zeros"],
  );
  assert.equal(mlp.outputsProbabilities, false);
  assert.equal(modelRequirement("mnist-cnn"), "conv");
  assert.equal(modelRequirement("mnist-mlp"), "dense");
  mlp.model.dispose();
});

test("a model whose shapes do not fit the dataset throws ModelDataMismatchError naming both", async () => {
  await assert.rejects(buildModel("spam-bow", mnistShape), (err: unknown) => {
    assert.ok(err instanceof ModelDataMismatchError);
    assert.match(err.message, /takes input \[2000\].*"mnist" has 784 values/);
    assert.match(err.message, /outputs \[2\].*10 classes/);
    return true;
  });
  await assert.rejects(
    ComputeEngine.create({ model: "mnist-mlp", dataset: "spam-assassin", backend: "wasm" }),
    ModelDataMismatchError,
  );
});

test("a layers config builds; a softmax output is recognised", async () => {
  const built = await buildModel(softmaxRegression, mnistShape);
  assert.equal(built.name, "softmax-regression");
  assert.equal(built.paramCount, 7850);
  assert.equal(built.outputsProbabilities, true);
  built.model.dispose();
  const wrapped = await buildModel({ modelTopology: softmaxRegression }, mnistShape);
  assert.equal(wrapped.paramCount, 7850);
  wrapped.model.dispose();
});

test("bad configs and names fail with typed errors", async () => {
  assert.throws(() => resolveModelConfig("resnet"), UnknownModelError);
  const unknownLayer = structuredClone(softmaxRegression);
  (unknownLayer.config.layers as { class_name: string }[])[0]!.class_name = "NoSuchLayer";
  await assert.rejects(buildModel(unknownLayer, mnistShape), InvalidModelConfigError);
  await assert.rejects(
    buildModel({ class_name: "Sequential" } as LayersModelConfig, mnistShape),
    InvalidModelConfigError,
  );
  const withNorm = structuredClone(softmaxRegression);
  (withNorm.config.layers as object[]).push({ class_name: "BatchNormalization", config: {} });
  await assert.rejects(buildModel(withNorm, mnistShape), /non-trainable/);
  const regularized = structuredClone(softmaxRegression);
  (regularized.config.layers as { config: Record<string, unknown> }[])[0]!.config.kernel_regularizer = {
    class_name: "L1L2",
    config: { l1: 0.01, l2: 0 },
  };
  await assert.rejects(buildModel(regularized, mnistShape), InvalidModelConfigError);
});

test("a softmax-ended layers config trains through the engine", async () => {
  const engine = await ComputeEngine.create({
    model: softmaxRegression,
    dataset: "mnist",
    backend: "wasm",
    seed: 5,
  });
  const before = engine.evaluate(Array.from({ length: 500 }, (_, i) => i));
  const params = engine.initParams();
  for (let step = 0; step < 30; step++) {
    const { grad, n } = engine.gradients(Array.from({ length: 100 }, (_, i) => (step * 100 + i) % 8000));
    for (let i = 0; i < params.length; i++) params[i]! -= (0.5 * grad[i]!) / n;
    engine.setParams(params);
  }
  const after = engine.evaluate(Array.from({ length: 500 }, (_, i) => i));
  assert.ok(after.loss < before.loss / 2, `loss ${before.loss} -> ${after.loss}`);
  assert.ok(after.accuracy > 0.75, `accuracy ${after.accuracy}`);
  engine.dispose();
});
