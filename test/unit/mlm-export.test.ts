import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ComputeEngine } from "../../actors/compute/engine.js";
import { loadDataset } from "../../actors/compute/datasets.js";
import { SavedModelError } from "../../actors/compute/errors.js";
import { exportModel, readModelDir, testDatasetOf } from "../../actors/job/model-export.js";
import { loadModelFiles, maskedTestScores } from "../../actors/compute/quantize-eval.js";
import { parseJobSpec } from "../../actors/job/spec.js";
import { sha256Hex } from "../../actors/reducer/checkpoint.js";
import { checkInfo } from "../../actors/predictor/model.js";
import { readPredictInput, recordsToInputs } from "../../actors/predictor/input.js";

const dir = mkdtempSync(join(tmpdir(), "flock-mlm-export-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const WORDS = ["free", "money", "now", "team", "lunch", "at", "noon", "win", "cash", "report"];
const records = Array.from({ length: 30 }, (_, i) => ({
  body: Array.from({ length: 3 + (i % 6) }, (_, j) => WORDS[(i * 3 + j * 7) % WORDS.length]).join(" "),
  y: i % 3 === 0 ? "spam" : "ham",
}));
const source = join(dir, "mail.jsonl");
writeFileSync(source, records.map((r) => JSON.stringify(r)).join("\n"));
const sizes = { layers: 1, heads: 2, width: 8, ffn: 8 };
const tokenizer = { vocabSize: 30, maxLen: 10 };

/** Exports the engine's initial parameters as job `id` would be exported; returns the folder. */
async function exported(id: string, spec: ReturnType<typeof parseJobSpec>): Promise<string> {
  const engine = await ComputeEngine.create({
    model: spec.model,
    dataset: spec.dataset,
    backend: "cpu",
    task: spec.task,
    seed: 1,
  });
  const params = engine.getParams();
  engine.dispose();
  return exportParams(id, spec, params);
}

async function exportParams(id: string, spec: ReturnType<typeof parseJobSpec>, params: Float32Array) {
  const out = join(dir, id);
  const stored = {
    v: 1 as const,
    job: id,
    step: 1,
    loss: 1,
    accuracy: 0.5,
    params,
    sha256: sha256Hex(new Uint8Array(params.buffer)),
  };
  await exportModel(spec, stored, out);
  return out;
}

test("an mlm export records task, tokenizer and maxLen; predict refuses it; a classifier reuses its tokenizer", async () => {
  const mlm = parseJobSpec({
    model: { name: "text-transformer-mlm", ...sizes },
    dataset: { source: pathToFileURL(source).href, format: "jsonl", text: "body", tokenizer },
    task: "mlm",
    epochs: 1,
    globalBatch: 8,
    optimizer: { name: "adam", lr: 1e-3 },
  });
  const lmDir = await exported("lm", mlm);
  const info = JSON.parse(readFileSync(join(lmDir, "flock.json"), "utf8")) as Record<string, unknown>;
  assert.equal(info.task, "mlm");
  assert.equal(info.maxLen, 10);
  const lmData = await loadDataset(mlm.dataset, mlm.seed);
  assert.deepEqual(info.tokenizer, lmData.tokens?.tokenizer);
  assert.throws(
    () => checkInfo(join(lmDir, "flock.json"), readFileSync(join(lmDir, "flock.json"), "utf8")),
    (e: unknown) => e instanceof SavedModelError && /masked language model/.test(e.message),
  );

  // Fine-tuning reads the pre-training vocabulary from the export.
  const classify = parseJobSpec({
    model: { name: "text-transformer", ...sizes },
    dataset: {
      source: pathToFileURL(source).href,
      format: "jsonl",
      text: "body",
      label: "y",
      tokenizer: pathToFileURL(lmDir).href,
    },
    init: pathToFileURL(lmDir).href,
    epochs: 1,
    globalBatch: 8,
    optimizer: { name: "adam", lr: 1e-3 },
  });
  const data = await loadDataset(classify.dataset, classify.seed);
  assert.deepEqual(data.tokens, lmData.tokens);
  const clsDir = await exported("cls", classify);
  const text = readFileSync(join(clsDir, "flock.json"), "utf8");
  const checked = checkInfo(join(clsDir, "flock.json"), text);
  assert.equal(checked.task, "classify");
  assert.deepEqual(checked.classes, ["ham", "spam"]);

  // predict encodes each record's text exactly as the dataset did (the same encoder).
  const input = readPredictInput(source, checked.preprocessing);
  const inputs = recordsToInputs(checked.preprocessing, input, 0, input.n, checked.tokenizer);
  const all = JSON.parse(JSON.stringify(classify.dataset)) as Record<string, unknown>;
  const inOrder = await loadDataset(
    parseJobSpec({ ...classify, dataset: { ...all, test: pathToFileURL(source).href } }).dataset,
    classify.seed,
  );
  const rows = inOrder.testBatch(records.map((_, i) => i));
  assert.deepEqual(inputs, rows.x);
  assert.deepEqual(Array.from(input.truth ?? []), Array.from(rows.y));
});

test("flock export scores an mlm export on the masks its job's evaluation used (stock tfjs, the job's figures)", async () => {
  const mlm = parseJobSpec({
    model: { name: "text-transformer-mlm", ...sizes },
    dataset: {
      source: pathToFileURL(source).href,
      format: "jsonl",
      text: "body",
      tokenizer,
      test: { fraction: 0.3 },
    },
    task: "mlm",
    mlm: { rate: 0.4 },
    seed: 5,
    epochs: 1,
    globalBatch: 8,
    optimizer: { name: "adam", lr: 1e-3 },
  });
  // The job's evaluator: an engine of the job's seed and rate, on trained-looking parameters.
  const engine = await ComputeEngine.create({ ...mlm, backend: "cpu", seed: mlm.seed, mlm: mlm.mlm });
  const params = engine.initParams().map((p, i) => p + 0.05 * Math.sin(i));
  engine.setParams(params);
  const job = engine.evaluate();
  engine.dispose();
  const out = await exportParams("lm-scored", mlm, params);
  const { files, info } = readModelDir(out);
  assert.deepEqual(info.mlm, { seed: 5, rate: 0.4 });
  const model = await loadModelFiles(files);
  const dataset = await testDatasetOf(info);
  const scores = maskedTestScores(model, dataset, info.mlm!);
  const other = maskedTestScores(model, dataset, { seed: 6, rate: 0.4 });
  model.dispose();
  assert.equal(scores.maskedTokens, job.maskedTokens);
  assert.ok(
    Math.abs(scores.loss - job.loss) < 1e-4 * job.loss,
    `loss ${scores.loss} vs the job's ${job.loss}`,
  );
  assert.equal(scores.accuracy, job.accuracy);
  assert.ok(Math.abs(other.loss - job.loss) > 1e-3, "another seed masks other positions: another loss");
});
