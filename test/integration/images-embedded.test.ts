/**
 * The `images` dataset format end to end on the embedded default: a generated folder of two
 * classes of synthetic shapes (PNG and JPEG, three image sizes) trains to completion from a
 * file:// folder, well above chance; flock.json records the classes, size and channels; and
 * `flock export --quantize uint8` rebuilds the test split from flock.json alone and scores the
 * float32 model exactly as the job reported.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { resolveJobSpec } from "../../actors/api.js";
import { train } from "../../actors/train.js";
import { compressModel, sourceFromDir } from "../../tools/cli/export.js";
import { writeShapes } from "../fixtures/synthetic-images.js";
import { scaleTimeout } from "../helpers/index.js";

const dir = mkdtempSync(join(tmpdir(), "flock-images-embedded-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test(
  "an images job from a file:// folder trains above chance; its export knows how to feed it",
  { timeout: scaleTimeout(240_000) },
  async () => {
    const data = writeShapes(join(dir, "shapes"), 60, 11);
    const layers = [
      { class_name: "Flatten", config: { name: "flat", batch_input_shape: [null, 12, 12, 1] } },
      { class_name: "Dense", config: { name: "hidden", units: 32, activation: "relu" } },
      { class_name: "Dense", config: { name: "logits", units: 2, activation: "linear" } },
    ];
    const spec = resolveJobSpec({
      name: "shapes",
      model: { class_name: "Sequential", config: { name: "shapes-mlp", layers } },
      dataset: {
        source: pathToFileURL(data).href,
        format: "images",
        size: [12, 12],
        channels: 1,
        test: { fraction: 0.25 },
      },
      epochs: 15,
      globalBatch: 16,
      optimizer: { name: "adam", lr: 0.01 },
      minWorkers: 1,
      maxWorkers: 2,
      evalEvery: 20,
    });
    const out = join(dir, "model");
    const result = await train(spec, { nodes: 2, out });
    assert.equal(result.status, "completed");
    assert.ok(result.ledgerAudit.exact, "every sample counted once per epoch");
    console.log(
      `images-embedded: accuracy ${result.accuracy} on 30 test images (chance 0.5), ${result.steps} steps`,
    );
    assert.ok(result.accuracy >= 0.85, `accuracy ${result.accuracy} is not clearly above chance (0.5)`);
    const info = JSON.parse(readFileSync(join(out, "flock.json"), "utf8")) as {
      classes: string[];
      inputShape: number[];
      images?: {
        format: string;
        classes: string[];
        size: number[];
        channels: number;
        test: { records: number };
      };
    };
    assert.deepEqual(info.classes, ["bar", "disc"]);
    assert.deepEqual(info.inputShape, [12, 12, 1]);
    assert.equal(info.images?.format, "images");
    assert.deepEqual(
      [info.images?.size, info.images?.channels, info.images?.test.records],
      [[12, 12], 1, 30],
    );

    const r = await compressModel(await sourceFromDir(out), join(dir, "u8"), { quantize: "uint8" });
    assert.equal(r.testSize, 30);
    assert.equal(r.before.accuracy, result.accuracy, "the test split rebuilt from flock.json is the job's");
    assert.ok(Math.abs(r.after.accuracy - r.before.accuracy) <= 1 / 30 + 1e-9, `uint8 ${r.after.accuracy}`);
  },
);
