/**
 * Model compression on the embedded default: a CSV job trained to completion, its model written
 * float32, uint8 (`train --quantize`, and `flock export` from the job's stored model) and float16
 * (`flock export` from the float32 folder). Each export is loaded by stock tfjs in a fresh process
 * (test/fixtures/stock-tfjs-predict.ts, no flock code); a uint8 export's weights are at most 30 %
 * of the float32 ones, float16's half, and both score within 1 point of the float32 model.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { test } from "node:test";
import { resolveJobSpec, runJob, saveJobModel } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import { flowersCsv } from "../../examples/data/generate.js";
import { compressModel, sourceFromDir, sourceFromJob, type ExportResult } from "../../tools/cli/export.js";
import { scaleTimeout } from "../helpers/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "flock-export-embedded-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const run = promisify(execFile);

/** Accuracy and predictions of an export on `testFile`, by stock tfjs in a fresh process. */
async function stockScore(
  modelDir: string,
  testFile: string,
): Promise<{ accuracy: number; predictions: number[] }> {
  const { stdout } = await run(
    process.execPath,
    [join(root, "dist/test/fixtures/stock-tfjs-predict.js"), modelDir, testFile],
    { cwd: root },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as { accuracy: number; predictions: number[] };
}

const weightBytes = (modelDir: string) => statSync(join(modelDir, "weights.bin")).size;
const agreement = (a: number[], b: number[]) => a.filter((k, i) => k === b[i]).length / a.length;

test(
  "uint8 and float16 exports load in stock tfjs, are 25 % and 50 % of float32, within 1 point",
  { timeout: scaleTimeout(240_000) },
  async (t) => {
    const lines = flowersCsv().trimEnd().split("\n");
    const [header] = lines;
    writeFileSync(join(dir, "train.csv"), [header, ...lines.slice(1, 481)].join("\n") + "\n");
    const testFile = join(dir, "test.csv");
    writeFileSync(testFile, [header, ...lines.slice(481)].join("\n") + "\n");
    const base = resolveJobSpec(join(root, "examples/flowers.json"));
    // A wider hidden layer than the example's, so that the weights, not the topology, are the bulk.
    const hidden = {
      class_name: "Dense",
      config: { name: "hidden", units: 512, activation: "relu", batch_input_shape: [null, 4] },
    };
    const logits = { class_name: "Dense", config: { name: "logits", units: 3, activation: "linear" } };
    const spec = resolveJobSpec({
      ...base,
      id: undefined,
      epochs: 8,
      optimizer: { name: "adam", lr: 0.005 },
      model: { class_name: "Sequential", config: { name: "flowers-wide", layers: [hidden, logits] } },
      dataset: {
        source: pathToFileURL(join(dir, "train.csv")).href,
        test: pathToFileURL(testFile).href,
        format: "csv",
        label: "species",
      },
    });
    const cluster = await EmbeddedCluster.start({ nodes: 2 });
    t.after(() => cluster.close());
    const result = await runJob(cluster.handle, spec);
    assert.equal(result.status, "completed");
    assert.ok(result.accuracy >= 0.85, `float32 accuracy ${result.accuracy}`);

    const f32 = join(dir, "f32");
    const u8 = join(dir, "u8");
    await saveJobModel(cluster.handle, spec, result, f32);
    const saved = await saveJobModel(cluster.handle, spec, result, u8, { quantize: "uint8" });
    assert.equal(saved.info.quantization, "uint8");
    const fromJob = await compressModel(
      await sourceFromJob(cluster.handle.stores, spec.id!),
      join(dir, "u8-job"),
      {
        quantize: "uint8",
      },
    );
    const f16 = join(dir, "f16");
    const fromDir = await compressModel(await sourceFromDir(f32), f16, { quantize: "float16" });

    const stock32 = await stockScore(f32, testFile);
    assert.equal(stock32.accuracy, result.accuracy, "the float32 export reproduces the reported accuracy");
    const params = 4 * 512 + 512 + 512 * 3 + 3;
    assert.equal(weightBytes(f32), 4 * params);
    const report = (name: string, r: ExportResult) =>
      `${name}: weights ${r.after.weightBytes}/${r.before.weightBytes} bytes (${(100 * r.weightRatio).toFixed(1)} %), ` +
      `total ${r.after.totalBytes}/${r.before.totalBytes}, accuracy ${r.after.accuracy.toFixed(4)} vs ${r.before.accuracy.toFixed(4)}`;
    console.log(`export-embedded: ${report("uint8 (job)", fromJob)}; ${report("float16 (dir)", fromDir)}`);

    for (const [name, modelDir, ratio, figures] of [
      ["uint8", u8, 0.25, fromJob],
      ["float16", f16, 0.5, fromDir],
    ] as const) {
      assert.equal(
        weightBytes(modelDir),
        ratio * weightBytes(f32),
        `${name}: ${ratio * 100} % of the float32 weights`,
      );
      const stock = await stockScore(modelDir, testFile);
      assert.ok(
        Math.abs(stock.accuracy - stock32.accuracy) <= 0.01,
        `${name}: stock accuracy ${stock.accuracy} vs float32 ${stock32.accuracy}`,
      );
      assert.ok(agreement(stock.predictions, stock32.predictions) >= 0.99, `${name}: predictions agree`);
      assert.equal(figures.before.accuracy, result.accuracy, `${name}: before is the reported accuracy`);
      assert.equal(figures.after.accuracy, stock.accuracy, `${name}: after is what stock tfjs scores`);
    }
    assert.deepEqual(
      readFileSync(join(dir, "u8-job", "weights.bin")),
      readFileSync(join(u8, "weights.bin")),
      "train --quantize and export from the job write the same bytes",
    );
    const manifest = JSON.parse(readFileSync(join(u8, "model.json"), "utf8")) as {
      weightsManifest: {
        weights: { dtype: string; quantization?: { dtype: string; scale: number; min: number } }[];
      }[];
    };
    for (const w of manifest.weightsManifest[0]?.weights ?? []) {
      assert.equal(w.dtype, "float32");
      assert.equal(w.quantization?.dtype, "uint8");
      assert.equal(typeof w.quantization?.scale, "number");
      assert.equal(typeof w.quantization?.min, "number");
    }
  },
);

test(
  "flock export: --json prints one result line; a quantised or missing source is refused",
  { timeout: scaleTimeout(60_000) },
  async () => {
    const flock = join(root, "dist/bin/flock.js");
    const src = join(dir, "f32");
    const { stdout } = await run(
      process.execPath,
      [flock, "export", src, "--out", join(dir, "cli-u8"), "--quantize", "uint8", "--prune", "0.5", "--json"],
      { cwd: root },
    );
    const r = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as ExportResult;
    assert.equal(r.quantize, "uint8");
    assert.equal(r.weightRatio, 0.25);
    assert.deepEqual(
      [r.prune, r.before.sparsity, r.after.sparsity],
      [0.5, 0, 0.5],
      "half of each kernel is 0",
    );
    const stock = await stockScore(join(dir, "cli-u8"), join(dir, "test.csv"));
    assert.equal(
      stock.accuracy,
      r.after.accuracy,
      "the pruned uint8 export scores in stock tfjs as reported",
    );
    console.log(
      `export-embedded: pruned 50 % + uint8: accuracy ${r.after.accuracy.toFixed(4)} vs ${r.before.accuracy.toFixed(4)}`,
    );
    await assert.rejects(
      run(process.execPath, [flock, "export", join(dir, "u8"), "--out", join(dir, "again")], { cwd: root }),
      (e: { code?: number; stderr?: string }) =>
        e.code === 1 && /hidden\/kernel is quantised/.test(e.stderr ?? ""),
    );
    await assert.rejects(
      run(process.execPath, [flock, "export", join(dir, "no-such-dir"), "--out", join(dir, "x")], {
        cwd: root,
      }),
      (e: { code?: number; stderr?: string }) => e.code === 2 && /is not a folder/.test(e.stderr ?? ""),
    );
  },
);
