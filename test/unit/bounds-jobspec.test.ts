import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import { BUILTIN_MODELS } from "../../actors/compute/model-zoo.js";
import {
  MAX_LAYER_UNITS,
  MAX_MODEL_LAYERS,
  MAX_MODEL_PARAMETERS,
  modelTooLarge,
} from "../../actors/job/model-bounds.js";
import { InvalidJobSpecError, JobSpec, MIN_CHECKPOINT_EVERY, parseJobSpec } from "../../actors/job/spec.js";

const base = {
  model: "mnist-mlp",
  dataset: "mnist",
  epochs: 1,
  globalBatch: 64,
  optimizer: { name: "sgd", lr: 0.1 },
};

function dense(units: unknown, inputs?: number): object {
  return { class_name: "Dense", config: { units, ...(inputs ? { batch_input_shape: [null, inputs] } : {}) } };
}
const sequential = (layers: object[]): object => ({ class_name: "Sequential", config: { layers } });

test("the built-in models fit; their estimate is exact for dense layers", () => {
  for (const [name, config] of Object.entries(BUILTIN_MODELS))
    assert.equal(modelTooLarge(config), undefined, name);
  assert.equal(modelTooLarge(sequential([dense(128, 784), dense(10)])), undefined, "101 770 parameters");
  assert.ok(parseJobSpec({ ...base, model: BUILTIN_MODELS["mnist-cnn"] }));
});

test("a model whose layers imply too many parameters is refused with its count", () => {
  // 4096 × 4096 + 4096 ≈ 16.8 M, over the 16 M bound.
  const big = sequential([dense(4096, 4096)]);
  assert.match(modelTooLarge(big) ?? "", /at least 16781312 parameters by layer 0; at most 16000000/);
  assert.throws(() => parseJobSpec({ ...base, model: big }), InvalidJobSpecError);
  const conv = sequential([
    {
      class_name: "Conv2D",
      config: { filters: 4096, kernel_size: [3, 3], batch_input_shape: [null, 28, 28, 512] },
    },
  ]);
  assert.match(modelTooLarge(conv) ?? "", /parameters/);
  const embedding = sequential([{ class_name: "Embedding", config: { input_dim: 65_536, output_dim: 512 } }]);
  assert.match(modelTooLarge(embedding) ?? "", /parameters/);
  assert.ok(MAX_MODEL_PARAMETERS === 16_000_000);
});

test("too many layers, absurd units and oversized configs are refused", () => {
  const deep = sequential(Array.from({ length: MAX_MODEL_LAYERS + 1 }, () => dense(1)));
  assert.match(modelTooLarge(deep) ?? "", /257 layers; at most 256/);
  assert.match(modelTooLarge(sequential([dense(MAX_LAYER_UNITS + 1, 1)])) ?? "", /units must be an integer/);
  assert.match(modelTooLarge(sequential([dense(-3, 1)])) ?? "", /units must be an integer/);
  assert.match(modelTooLarge(sequential([dense("many", 1)])) ?? "", /units must be an integer/);
  const padded = { ...sequential([dense(1, 1)]), junk: "x".repeat(2 << 20) };
  assert.match(modelTooLarge(padded) ?? "", /as JSON/);
});

test("checkpointEvery has a minimum; intervals and sizes have maxima; the daemon's schema says so", () => {
  assert.equal(MIN_CHECKPOINT_EVERY, 5);
  const bad = JobSpec.safeParse({ ...base, checkpointEvery: 1 });
  assert.equal(bad.success, false);
  assert.match(bad.success ? "" : z.prettifyError(bad.error), /at least 5 steps between checkpoints/);
  assert.equal(JobSpec.safeParse({ ...base, checkpointEvery: 5 }).success, true);
  for (const over of [
    { evalEvery: 2e6 },
    { hashEvery: 2e6 },
    { epochs: 1001 },
    { globalBatch: 2 ** 21 },
    { reducers: 65 },
  ])
    assert.equal(JobSpec.safeParse({ ...base, ...over }).success, false, JSON.stringify(over));
  // The kinds' argument schemas embed JobSpec: a spawn with such a spec is refused at the daemon.
  const args = z.strictObject({ job: z.string(), spec: JobSpec });
  assert.equal(
    args.safeParse({ job: "j", spec: { ...base, model: sequential([dense(4096, 4096)]) } }).success,
    false,
  );
});

test("layers the check cannot size are refused by name; weight-free ones pass", () => {
  const lstm = { class_name: "LSTM", config: { units: 20_000 } };
  assert.match(
    modelTooLarge(sequential([dense(8, 784), lstm, dense(10)])) ?? "",
    /layer class "LSTM" is not supported/,
  );
  const nested = sequential([dense(8, 784), sequential([dense(8)])]);
  assert.match(modelTooLarge(nested) ?? "", /layer class "Sequential" is not supported/);
  const light = ["Flatten", "Dropout", "Activation", "MaxPooling2D", "BatchNormalization"].map((c) => ({
    class_name: c,
    config: {},
  }));
  assert.equal(modelTooLarge(sequential([dense(8, 784), ...light, dense(10)])), undefined);
});

test("an optimizer's warmup is a whole number of steps within the bound", () => {
  const warmed = parseJobSpec({ ...base, optimizer: { name: "adam", lr: 0.004, warmup: 50 } });
  assert.deepEqual(warmed.optimizer, { name: "adam", lr: 0.004, warmup: 50 });
  assert.ok(parseJobSpec({ ...base, optimizer: { name: "sgd", lr: 0.1, warmup: 0 } }));
  for (const warmup of [-1, 2.5, 2_000_000, "10"])
    assert.throws(
      () => parseJobSpec({ ...base, optimizer: { name: "adam", lr: 0.004, warmup } }),
      InvalidJobSpecError,
      String(warmup),
    );
});
