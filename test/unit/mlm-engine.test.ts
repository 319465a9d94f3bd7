import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ComputeEngine } from "../../actors/compute/engine.js";
import { FileDatasetSpec } from "../../actors/compute/dataset-spec.js";
import { EVAL_MASK_STEP } from "../../actors/compute/engine-mlm.js";
import { ModelDataMismatchError } from "../../actors/compute/errors.js";
import { rowMeanScale, NOT_MASKED } from "../../actors/compute/transformer/mlm.js";

const dir = mkdtempSync(join(tmpdir(), "flock-mlm-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "park", "big", "red"];
/** 60 short sentences of a small repetitive language (learnable in a few steps), no labels. */
const lines = Array.from({ length: 60 }, (_, i) => {
  const n = 4 + (i % 5);
  return JSON.stringify({
    body: Array.from({ length: n }, (_, j) => WORDS[(i * 5 + j * 7) % WORDS.length]).join(" "),
  });
});
const source = join(dir, "corpus.jsonl");
writeFileSync(source, lines.join("\n"));
const dataset = FileDatasetSpec.parse({
  source: pathToFileURL(source).href,
  format: "jsonl",
  text: "body",
  tokenizer: { vocabSize: 40, maxLen: 12 },
});
const model = { name: "text-transformer-mlm", layers: 1, heads: 2, width: 16, ffn: 32 };

const engines = new Map<string, ComputeEngine>();
async function engineOn(backend: "cpu" | "wasm"): Promise<ComputeEngine> {
  let e = engines.get(backend);
  if (!e) {
    e = await ComputeEngine.create({ model, dataset, backend, seed: 5, task: "mlm", mlm: { rate: 0.3 } });
    engines.set(backend, e);
  }
  return e;
}
test.after(() => engines.forEach((e) => e.dispose()));

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test("rowMeanScale: 1 / count of the row at its masked positions, 0 elsewhere", () => {
  const t = NOT_MASKED;
  const scale = rowMeanScale(Int32Array.from([t, 7, t, 9, t, t, t, 5, t, t, t, t]), 4);
  assert.deepEqual(Array.from(scale), [0, 0.5, 0, 0.5, 0, 0, 0, 1, 0, 0, 0, 0]);
});

test("same indices and step: identical gradients; another step masks (and so differs) otherwise", async () => {
  const e = await engineOn("cpu");
  e.setParams(e.initParams());
  const a = e.gradients(range(0, 8), 3);
  const b = e.gradients(range(0, 8), 3);
  assert.equal(a.n, 8, "n counts samples, not tokens");
  assert.deepEqual(a.grad, b.grad);
  assert.equal(a.lossSum, b.lossSum);
  const c = e.gradients(range(0, 8), 4);
  assert.notDeepEqual(c.grad, a.grad);
  // Per-row mean losses: each sample's term is about ln(vocabulary) at the start.
  const v = e.info.weights.find((w) => w.name === "token/embeddings")?.shape[0] ?? 0;
  assert.ok(Math.abs(a.lossSum / a.n - Math.log(v)) < 1.5, `${a.lossSum / a.n} vs ln ${v}`);
});

test("a batch split over two calls sums to the one-call gradient and loss (any split)", async () => {
  const e = await engineOn("cpu");
  e.setParams(e.initParams());
  const whole = e.gradients(range(0, 10), 7);
  for (const cut of [3, 6]) {
    const left = e.gradients(range(0, cut), 7);
    const right = e.gradients(range(cut, 10), 7);
    const sum = left.grad.map((g, i) => g + right.grad[i]!);
    assert.ok(maxDiff(sum, whole.grad) < 1e-4, `cut ${cut}: max diff ${maxDiff(sum, whole.grad)}`);
    assert.ok(Math.abs(left.lossSum + right.lossSum - whole.lossSum) < 1e-3);
    assert.equal(left.n + right.n, whole.n);
  }
});

for (const backend of ["cpu", "wasm"] as const) {
  test(`${backend}: the masked loss of a fixed batch falls under a few SGD steps`, async () => {
    const e = await engineOn(backend);
    assert.equal(e.info.backend, backend);
    const params = e.initParams();
    e.setParams(params);
    const batch = range(0, 16);
    const first = e.gradients(batch, 1);
    let last = first;
    for (let k = 0; k < 12; k++) {
      for (let i = 0; i < params.length; i++) params[i]! -= (0.5 * last.grad[i]!) / last.n;
      e.setParams(params);
      last = e.gradients(batch, 1);
    }
    const before = first.lossSum / first.n;
    const after = last.lossSum / last.n;
    assert.ok(after < before * 0.8, `${backend}: loss ${before.toFixed(3)} → ${after.toFixed(3)}`);
  });
}

test("local steps: a redo of a round repeats its masks (the same pseudo-gradient)", async () => {
  const e = await engineOn("cpu");
  e.setParams(e.initParams());
  const opt = { name: "sgd" as const, lr: 0.1 };
  const a = e.localSteps(range(0, 12), 3, opt, 2);
  const b = e.localSteps(range(0, 12), 3, opt, 2);
  assert.deepEqual(a.grad, b.grad);
  assert.equal(a.n, 12);
  assert.notDeepEqual(e.localSteps(range(0, 12), 3, opt, 3).grad, a.grad, "another round masks anew");
});

test("evaluate: masked loss, accuracy, perplexity = exp(loss), the same masks every time", async () => {
  const e = await engineOn("cpu");
  e.setParams(e.initParams());
  const r = e.evaluate();
  assert.equal(r.n, e.info.testSize);
  assert.ok(r.maskedTokens !== undefined && r.maskedTokens >= r.n, "every row with tokens masks ≥ 1");
  assert.ok(r.accuracy >= 0 && r.accuracy <= 1);
  assert.ok(r.perplexity !== undefined && Math.abs(r.perplexity - Math.exp(r.loss)) < 1e-6 * r.perplexity);
  assert.deepEqual(e.evaluate(), r);
  // A subset scores the same rows' masks (masks follow the row's ids, not its place in the chunk).
  const half = e.evaluate(range(0, Math.floor(r.n / 2)));
  assert.ok(half.n < r.n && half.maskedTokens! < r.maskedTokens!);
  assert.equal(EVAL_MASK_STEP, 0);
});

test("task mlm refuses a model whose output is not [maxLen, vocabulary]", async () => {
  await assert.rejects(
    ComputeEngine.create({
      model: { ...model, name: "text-transformer" },
      dataset,
      backend: "cpu",
      task: "mlm",
    }),
    (e: unknown) => e instanceof ModelDataMismatchError && /task mlm/.test(e.message),
  );
});

test("wasm: the encoder learns what only the context says (a cycle of 8 words: masked accuracy ≥ 0.6)", async (t) => {
  // Row k is the cycle of 8 words started at word k: a masked word is told only by its neighbours
  // (every word is equally frequent), so a model that ignored the context would stay near 1/8.
  const cycle = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];
  const rows = Array.from({ length: 400 }, (_, i) =>
    JSON.stringify({ body: Array.from({ length: 14 }, (_, j) => cycle[(i + j) % 8]).join(" ") }),
  );
  const file = join(dir, "cycle.jsonl");
  writeFileSync(file, rows.join("\n"));
  const e = await ComputeEngine.create({
    model: { name: "text-transformer-mlm", layers: 1, heads: 2, width: 32, ffn: 64 },
    dataset: FileDatasetSpec.parse({
      source: pathToFileURL(file).href,
      format: "jsonl",
      text: "body",
      tokenizer: { vocabSize: 40, maxLen: 16 },
      test: { fraction: 0.2 },
    }),
    backend: "wasm",
    seed: 1,
    task: "mlm",
  });
  t.after(() => e.dispose());
  const before = e.evaluate();
  // Adam (lr 0.003) by hand: the reducers' optimizer is not what this test is about.
  const p = e.getParams();
  const m = new Float32Array(p.length);
  const v = new Float32Array(p.length);
  const steps = 250;
  for (let step = 1; step <= steps; step++) {
    const batch = Array.from({ length: 16 }, (_, j) => (step * 16 + j * 7) % e.info.trainSize);
    const g = e.gradients(batch, step);
    for (let i = 0; i < p.length; i++) {
      const gi = (g.grad[i] ?? 0) / g.n;
      m[i] = 0.9 * (m[i] ?? 0) + 0.1 * gi;
      v[i] = 0.999 * (v[i] ?? 0) + 0.001 * gi * gi;
      const mHat = (m[i] ?? 0) / (1 - 0.9 ** step);
      const vHat = (v[i] ?? 0) / (1 - 0.999 ** step);
      p[i] = (p[i] ?? 0) - (0.003 * mHat) / (Math.sqrt(vHat) + 1e-8);
    }
    e.setParams(p);
  }
  const after = e.evaluate();
  t.diagnostic(
    `masked accuracy ${before.accuracy.toFixed(3)} → ${after.accuracy.toFixed(3)}, perplexity ${before.perplexity?.toFixed(1)} → ${after.perplexity?.toFixed(2)} in ${steps} steps`,
  );
  assert.ok(after.accuracy >= 0.6, `masked accuracy ${after.accuracy} after ${steps} steps`);
});
