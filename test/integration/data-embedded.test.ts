/**
 * Datasets from the user's files and the model out, on the embedded default (in-process bus,
 * in-memory stores, trainers and the evaluator in worker threads): a CSV tabular job and a JSONL
 * text job train from file:// sources to completion; the exported model.json + weights.bin, loaded
 * by stock tfjs in a fresh process that feeds it with flock.json alone, reproduces the reported
 * test accuracy exactly, with the same predictions as flock's own inputs give.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { resolveJobSpec } from "../../actors/api.js";
import { loadFileDataset } from "../../actors/compute/dataset-file.js";
import type { FileDatasetSpec } from "../../actors/compute/dataset-spec.js";
import { train } from "../../actors/train.js";
import { flowersCsv } from "../../examples/data/generate.js";
import { scaleTimeout } from "../helpers/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "flock-data-embedded-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Predictions of the exported model on flock's own test inputs (the in-process reference). */
async function flockPredictions(
  modelDir: string,
  spec: ReturnType<typeof resolveJobSpec>,
): Promise<number[]> {
  const mj = JSON.parse(readFileSync(join(modelDir, "model.json"), "utf8")) as {
    modelTopology: object;
    weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[];
  };
  const bin = readFileSync(join(modelDir, "weights.bin"));
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: mj.modelTopology,
      weightSpecs: mj.weightsManifest.flatMap((g) => g.weights),
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
    }),
  );
  assert.equal(typeof spec.dataset, "object");
  const data = loadFileDataset(spec.dataset as FileDatasetSpec, spec.seed);
  const batch = data.testBatch(Array.from({ length: data.testSize }, (_, i) => i));
  const out = model.predict(tf.tensor2d(batch.x, [batch.n, data.inputSize])) as tf.Tensor;
  return Array.from(tf.argMax(out, 1).dataSync());
}

/** Trains, exports, and checks the export in a fresh process against the reported accuracy. */
async function trainAndCheck(spec: ReturnType<typeof resolveJobSpec>, testFile: string, minAccuracy: number) {
  const out = join(dir, `model-${spec.name}`);
  const result = await train(spec, { nodes: 2, out });
  assert.equal(result.status, "completed");
  assert.ok(result.ledgerAudit.exact, "every sample counted once per epoch");
  assert.ok(result.accuracy >= minAccuracy, `${spec.name}: accuracy ${result.accuracy} < ${minAccuracy}`);
  assert.equal(result.model?.info.step, result.steps);
  assert.equal(result.model?.info.accuracy, result.accuracy);
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(root, "dist/test/fixtures/stock-tfjs-predict.js"), out, testFile],
    { cwd: root },
  );
  const stock = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as {
    predictions: number[];
    accuracy: number;
  };
  assert.equal(
    stock.accuracy,
    result.accuracy,
    "stock tfjs in a fresh process reproduces the reported accuracy",
  );
  assert.deepEqual(
    stock.predictions,
    await flockPredictions(out, spec),
    "same predictions as flock's own inputs",
  );
  return result;
}

test(
  "a CSV tabular job from file:// trains to completion; its export reproduces the accuracy",
  { timeout: scaleTimeout(180_000) },
  async () => {
    const lines = flowersCsv().trimEnd().split("\n");
    const [header] = lines;
    writeFileSync(join(dir, "train.csv"), [header, ...lines.slice(1, 481)].join("\n") + "\n");
    writeFileSync(join(dir, "test.csv"), [header, ...lines.slice(481)].join("\n") + "\n");
    const base = resolveJobSpec(join(root, "examples/flowers.json"));
    const spec = resolveJobSpec({
      ...base,
      id: undefined,
      epochs: 10,
      dataset: {
        source: pathToFileURL(join(dir, "train.csv")).href,
        test: pathToFileURL(join(dir, "test.csv")).href,
        format: "csv",
        label: "species",
      },
    });
    const result = await trainAndCheck(spec, join(dir, "test.csv"), 0.9);
    assert.deepEqual(result.model?.info.classes, ["iris-alba", "iris-blue", "iris-crimson"]);
  },
);

test(
  "a JSONL text job from file:// trains to completion; its export reproduces the accuracy",
  { timeout: scaleTimeout(180_000) },
  async () => {
    const spec = resolveJobSpec(join(root, "examples/reviews.json"));
    const result = await trainAndCheck(spec, join(root, "examples/data/reviews-test.jsonl"), 0.8);
    // The reviews use 40 distinct words: the other 24 of the 64 columns stay zero.
    assert.equal(result.model?.info.preprocessing?.text?.vocabulary.length, 40);
    assert.equal(result.model?.info.inputShape[0], 64);
  },
);
