import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { frozenRanges, initFromSaved, zeroFrozen, type SavedWeight } from "../../actors/compute/fine-tune.js";
import { ComputeEngine } from "../../actors/compute/engine.js";
import { SavedModelError, UnknownFrozenLayerError } from "../../actors/compute/errors.js";
import type { WeightInfo } from "../../actors/compute/models.js";
import { createOptimizer } from "../../actors/compute/optimizer.js";
import { checkSavedModelDir, readSavedWeights } from "../../actors/compute/saved-model.js";
import { exportModel } from "../../actors/job/model-export.js";
import {
  StoredModelError,
  decodeStoredModel,
  encodeStoredModel,
  storedWeights,
} from "../../actors/job/model-store.js";
import { InvalidJobSpecError, parseJobSpec, type JobSpecInput } from "../../actors/job/spec.js";
import { sha256Hex } from "../../actors/reducer/checkpoint.js";

const dir = mkdtempSync(join(tmpdir(), "flock-fine-tune-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A weight layout in flat order, as `buildModel` describes one. */
function layout(...ws: [string, number[]][]): WeightInfo[] {
  let offset = 0;
  return ws.map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const w: WeightInfo = { name, shape, size, offset, init: "zeros" };
    offset += size;
    return w;
  });
}
const total = (ws: WeightInfo[]) => ws.reduce((a, w) => a + w.size, 0);
const filled = (n: number, v: number) => new Float32Array(n).fill(v);
const saved = (name: string, shape: number[], v: number): SavedWeight => ({
  name,
  shape,
  values: filled(
    shape.reduce((a, b) => a * b, 1),
    v,
  ),
});

test("layers matched by name and shape take the saved weights; a new head keeps the seeded ones", () => {
  const ws = layout(
    ["hidden/kernel", [3, 4]],
    ["hidden/bias", [4]],
    ["head/kernel", [4, 2]],
    ["head/bias", [2]],
  );
  const seeded = filled(total(ws), 0.5);
  // The old head had 5 classes; saved in another order than the model's (matched by name).
  const from = [
    saved("head/bias", [5], 9),
    saved("head/kernel", [4, 5], 9),
    saved("hidden/bias", [4], 2),
    saved("hidden/kernel", [3, 4], 1),
  ];
  const { params, report } = initFromSaved(ws, seeded, from);
  assert.deepEqual(
    Array.from(params.subarray(0, 12)),
    Array(12).fill(1),
    "hidden/kernel from the saved model",
  );
  assert.deepEqual(Array.from(params.subarray(12, 16)), Array(4).fill(2), "hidden/bias from the saved model");
  assert.deepEqual(Array.from(params.subarray(16)), Array(10).fill(0.5), "the head keeps the seeded values");
  assert.deepEqual(report.taken, ["hidden"]);
  assert.deepEqual(report.kept, [{ layer: "head", reason: "head/kernel is [4, 2], saved [4, 5]" }]);
  assert.deepEqual(report.unused, ["head"]);
  assert.deepEqual(Array.from(seeded), Array(total(ws)).fill(0.5), "the seeded vector is not changed");
});

test("a layer is taken whole or not at all; a missing layer keeps the seeded values", () => {
  const ws = layout(["a/kernel", [2, 2]], ["a/bias", [2]], ["b/kernel", [2, 2]]);
  // a's bias has the wrong shape: its kernel, although it fits, is not taken alone.
  const { params, report } = initFromSaved(ws, filled(total(ws), 0), [
    saved("a/kernel", [2, 2], 1),
    saved("a/bias", [3], 1),
    saved("old/kernel", [2, 2], 1),
  ]);
  assert.deepEqual(Array.from(params), Array(10).fill(0));
  assert.deepEqual(report.taken, []);
  assert.deepEqual(report.kept, [
    { layer: "a", reason: "a/bias is [2], saved [3]" },
    { layer: "b", reason: "no saved weight b/kernel" },
  ]);
  assert.deepEqual(report.unused, ["a", "old"]);
});

test("freeze: the ranges of the named layers; their gradient entries are zeroed; an unknown name is refused", () => {
  const ws = layout(
    ["hidden/kernel", [3, 4]],
    ["hidden/bias", [4]],
    ["head/kernel", [4, 2]],
    ["head/bias", [2]],
  );
  const ranges = frozenRanges(ws, ["hidden"]);
  assert.deepEqual(ranges, [
    { start: 0, end: 12 },
    { start: 12, end: 16 },
  ]);
  const grad = filled(total(ws), 3);
  zeroFrozen(grad, ranges);
  assert.deepEqual(Array.from(grad), [...Array(16).fill(0), ...Array(10).fill(3)]);
  assert.throws(
    () => frozenRanges(ws, ["hiden"]),
    (e: unknown) => e instanceof UnknownFrozenLayerError && e.layer === "hiden" && /"hiden"/.test(e.message),
  );
});

test("every optimizer leaves zero-gradient entries exactly as they are, over many steps", () => {
  for (const spec of [
    { name: "sgd", lr: 0.1 },
    { name: "sgd", lr: 0.1, momentum: 0.9 },
    { name: "adam", lr: 0.01 },
  ] as const) {
    const opt = createOptimizer(spec);
    const params = Float32Array.from({ length: 8 }, (_, i) => 0.1 * i - 0.3);
    const before = params.slice(0, 4);
    for (let step = 0; step < 20; step++) {
      const grad = Float32Array.from({ length: 8 }, (_, i) => (i < 4 ? 0 : Math.sin(step + i)));
      opt.step(params, grad, 1 / 8);
    }
    assert.deepEqual(
      params.slice(0, 4),
      before,
      `${spec.name}${"momentum" in spec ? "+momentum" : ""}: frozen entries unchanged`,
    );
    assert.notDeepEqual(
      params.slice(4),
      Float32Array.from({ length: 4 }, (_, i) => 0.1 * (i + 4) - 0.3),
    );
  }
});

const model = (classes: number) => ({
  class_name: "Sequential",
  config: {
    name: "tiny",
    layers: [
      {
        class_name: "Dense",
        config: { name: "hidden", units: 5, activation: "relu", batch_input_shape: [null, 3] },
      },
      { class_name: "Dense", config: { name: "head", units: classes } },
    ],
  },
});

/** A CSV with 3 numeric features and `classes` string labels. */
function csv(name: string, classes: number): string {
  const rows = [
    "a,b,c,y",
    ...Array.from({ length: 30 }, (_, i) => `${i % 7},${(i * 3) % 5},${i / 10},k${i % classes}`),
  ];
  writeFileSync(join(dir, name), rows.join("\n") + "\n");
  return pathToFileURL(join(dir, name)).href;
}

const spec = (extra: Partial<JobSpecInput>): JobSpecInput => ({
  model: model(3),
  dataset: { source: csv("three.csv", 3), format: "csv", label: "y" },
  epochs: 1,
  globalBatch: 8,
  optimizer: { name: "adam", lr: 0.01 },
  ...extra,
});

test("an exported model read back: init reproduces its weights exactly, a new head stays seeded", async () => {
  const source = parseJobSpec({ ...spec({}), id: "src" });
  const params = Float32Array.from({ length: 3 * 5 + 5 + 5 * 3 + 3 }, (_, i) => Math.fround(Math.cos(i) / 3));
  const bytes = new Uint8Array(params.buffer);
  const out = join(dir, "export");
  // The same code `flock train --out` uses.
  await exportModel(
    source,
    { v: 1, job: "src", step: 3, loss: 1, accuracy: 0.5, params, sha256: sha256Hex(bytes) },
    out,
  );
  const url = pathToFileURL(out).href;
  const read = readSavedWeights(url);
  assert.deepEqual(
    read.map((w) => w.name),
    ["hidden/kernel", "hidden/bias", "head/kernel", "head/bias"],
  );
  assert.deepEqual(read[0]?.values, params.subarray(0, 15));

  const same = await ComputeEngine.create({
    model: model(3),
    dataset: source.dataset,
    backend: "cpu",
    seed: 4,
    init: url,
  });
  assert.deepEqual(same.initParams(), params, "the same model starts exactly where the export ended");
  assert.deepEqual(same.getParams(), params, "and holds those parameters after create");
  assert.deepEqual(same.info.init?.taken, ["hidden", "head"]);
  same.dispose();

  const fresh = await ComputeEngine.create({
    model: model(2),
    dataset: { source: csv("two.csv", 2), format: "csv", label: "y" },
    backend: "cpu",
    seed: 4,
  });
  const tuned = await ComputeEngine.create({
    model: model(2),
    dataset: { source: csv("two.csv", 2), format: "csv", label: "y" },
    backend: "cpu",
    seed: 4,
    init: url,
    freeze: ["hidden"],
  });
  const p = tuned.initParams();
  assert.deepEqual(p.subarray(0, 20), params.subarray(0, 20), "hidden from the export");
  assert.deepEqual(
    p.subarray(20),
    fresh.initParams().subarray(20),
    "a 2-class head keeps the seeded initialisation",
  );
  assert.deepEqual(
    tuned.info.init?.kept.map((k) => k.layer),
    ["head"],
  );
  const { grad } = tuned.gradients([0, 1, 2, 3]);
  assert.ok(
    grad.subarray(0, 20).every((g) => g === 0),
    "frozen: the hidden layer's gradient is zero",
  );
  assert.ok(
    grad.subarray(20).some((g) => g !== 0),
    "the head still learns",
  );
  fresh.dispose();
  tuned.dispose();
});

test("a saved model folder that is missing, lacks model.json or is not a folder is refused, naming it", () => {
  const isSaved = (fragment: RegExp) => (e: unknown) =>
    e instanceof SavedModelError && fragment.test(e.message);
  assert.throws(
    () => checkSavedModelDir(pathToFileURL(join(dir, "nowhere")).href),
    isSaved(/nowhere: has no readable model\.json/),
  );
  mkdirSync(join(dir, "empty"));
  assert.throws(
    () => checkSavedModelDir(pathToFileURL(join(dir, "empty")).href),
    isSaved(/empty: has no readable model\.json/),
  );
  writeFileSync(join(dir, "plain"), "x");
  assert.throws(
    () => checkSavedModelDir(pathToFileURL(join(dir, "plain")).href),
    isSaved(/plain: is not a folder/),
  );
  mkdirSync(join(dir, "bad"));
  writeFileSync(
    join(dir, "bad", "model.json"),
    JSON.stringify({ weightsManifest: [{ paths: ["../x.bin"], weights: [] }] }),
  );
  assert.throws(
    () => readSavedWeights(pathToFileURL(join(dir, "bad")).href),
    isSaved(/outside the model's folder/),
  );
  writeFileSync(
    join(dir, "bad", "model.json"),
    JSON.stringify({
      weightsManifest: [{ paths: ["w.bin"], weights: [{ name: "a/kernel", shape: [2], dtype: "float32" }] }],
    }),
  );
  writeFileSync(join(dir, "bad", "w.bin"), new Uint8Array(4));
  assert.throws(
    () => readSavedWeights(pathToFileURL(join(dir, "bad")).href),
    isSaved(/a\/kernel runs past the end of w\.bin/),
  );
});

test("job spec: init and freeze are checked with messages that say what is wrong", () => {
  const refused = (input: JobSpecInput, fragment: RegExp) =>
    assert.throws(
      () => parseJobSpec(input),
      (e: unknown) => e instanceof InvalidJobSpecError && fragment.test(e.message),
    );
  const ok = parseJobSpec(spec({ init: pathToFileURL(join(dir, "export")).href, freeze: ["hidden"] }));
  assert.deepEqual(ok.freeze, ["hidden"]);
  assert.equal(parseJobSpec(spec({ init: "job://j-1_a" })).init, "job://j-1_a");
  refused(
    spec({ freeze: ["hiddn"] }),
    /freeze names "hiddn", not a layer of the model \(its layers: hidden, head\)/,
  );
  refused(spec({ freeze: ["hidden", "hidden"] }), /more than once/);
  refused(spec({ init: "file://relative/dir" }), /absolute path|not a valid/);
  refused(spec({ init: "/abs/dir" }), /neither file:\/\/\/ABS\/DIR .* nor job:\/\/ID/);
  refused(spec({ init: "job://no spaces" }), /a job id is letters, digits/);
  const unnamed = model(3);
  delete (unnamed.config.layers[1]!.config as { name?: string }).name;
  refused(
    spec({ model: unnamed, init: "job://x" }),
    /init matches layers by name: layer 1 of the model has no config\.name/,
  );
  assert.equal(
    parseJobSpec(spec({ model: "mnist-mlp", dataset: "mnist", freeze: ["hidden"] })).freeze?.[0],
    "hidden",
  );
});

test("a stored model is cut into its named weights; one without a layout, or whose layout does not add up, is refused", () => {
  const params = Float32Array.from({ length: 10 }, (_, i) => i);
  const weights = [
    { name: "a/kernel", shape: [2, 3] },
    { name: "a/bias", shape: [4] },
  ];
  const blob = encodeStoredModel({ job: "j", step: 1, loss: 0, accuracy: 0, params, weights });
  const cut = storedWeights(decodeStoredModel(blob, "x"));
  assert.deepEqual(
    cut.map((w) => [w.name, Array.from(w.values)]),
    [
      ["a/kernel", [0, 1, 2, 3, 4, 5]],
      ["a/bias", [6, 7, 8, 9]],
    ],
  );
  const old = decodeStoredModel(encodeStoredModel({ job: "j", step: 1, loss: 0, accuracy: 0, params }), "x");
  assert.throws(
    () => storedWeights(old),
    (e: unknown) => e instanceof StoredModelError && /lists no weights/.test(e.message),
  );
  const short = decodeStoredModel(
    encodeStoredModel({ job: "j", step: 1, loss: 0, accuracy: 0, params, weights: weights.slice(0, 1) }),
    "x",
  );
  assert.throws(
    () => storedWeights(short),
    (e: unknown) => e instanceof StoredModelError && /do not add up/.test(e.message),
  );
});
