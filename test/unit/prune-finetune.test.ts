/**
 * `keepZeros`: a pruned model fine-tuned from its saved weights keeps every pruned kernel value
 * exactly 0 through Adam steps, while the other parameters move; the spec refuses it without `init`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ComputeEngine } from "../../actors/compute/engine.js";
import { savedZeroIndices, zeroAt, type SavedWeight } from "../../actors/compute/fine-tune.js";
import type { WeightInfo } from "../../actors/compute/models.js";
import { createOptimizer } from "../../actors/compute/optimizer.js";
import { magnitudePrune } from "../../actors/compute/prune.js";
import { finetuneSpec } from "../../tools/cli/export-finetune.js";
import { InvalidJobSpecError, parseJobSpec, type JobSpecInput } from "../../actors/job/spec.js";

const dir = mkdtempSync(join(tmpdir(), "flock-prune-ft-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const model = {
  class_name: "Sequential",
  config: {
    name: "tiny",
    layers: [
      {
        class_name: "Dense",
        config: { name: "hidden", units: 5, activation: "relu", batch_input_shape: [null, 3] },
      },
      { class_name: "Dense", config: { name: "head", units: 3 } },
    ],
  },
};

function csv(): string {
  const rows = [
    "a,b,c,y",
    ...Array.from({ length: 30 }, (_, i) => `${i % 7},${(i * 3) % 5},${i / 10},k${i % 3}`),
  ];
  writeFileSync(join(dir, "d.csv"), rows.join("\n") + "\n");
  return pathToFileURL(join(dir, "d.csv")).href;
}

/** Saved weights of the tiny model, kernels pruned to 80 % zeros, biases not zero. */
function prunedWeights(): SavedWeight[] {
  const values = (n: number, at: number) => Float32Array.from({ length: n }, (_, i) => Math.cos(at + i) / 2);
  return [
    { name: "hidden/kernel", shape: [3, 5], values: magnitudePrune(values(15, 0), 0.8) },
    { name: "hidden/bias", shape: [5], values: values(5, 20) },
    { name: "head/kernel", shape: [5, 3], values: magnitudePrune(values(15, 40), 0.8) },
    { name: "head/bias", shape: [3], values: values(3, 60) },
  ];
}

test("keepZeros: pruned kernel values stay exactly 0 through Adam steps; the others move", async () => {
  const dataset = { source: csv(), format: "csv" as const, label: "y" };
  const engine = await ComputeEngine.create({
    model,
    dataset,
    backend: "cpu",
    init: prunedWeights(),
    keepZeros: true,
  });
  try {
    const start = engine.getParams();
    const zeros = [...start.keys()].filter((i) => start[i] === 0);
    assert.equal(zeros.length, 24, "12 of each 15-value kernel are 0; biases none");
    const adam = createOptimizer({ name: "adam", lr: 0.05 });
    const params = start.slice();
    for (let step = 0; step < 5; step++) {
      engine.setParams(params);
      const g = engine.gradients([...Array(24).keys()].filter((i) => (i + step) % 2 === 0));
      assert.ok(
        zeros.every((i) => g.grad[i] === 0),
        `step ${step}: pinned entries have a zero gradient`,
      );
      adam.step(params, g.grad, 1 / g.n);
    }
    assert.ok(
      zeros.every((i) => Object.is(params[i], 0)),
      "every pruned value is still exactly +0",
    );
    const moved = [...params.keys()].filter((i) => params[i] !== start[i]);
    // 14 values are not pinned; those behind a dead relu unit get no gradient anyway.
    assert.ok(moved.length >= 5, `the other parameters learn (${moved.length} of 14 moved)`);

    // Without keepZeros, the same start moves pruned values: the mask is what pins them.
    const free = await ComputeEngine.create({ model, dataset, backend: "cpu", init: prunedWeights() });
    const g = free.gradients([...Array(24).keys()]);
    assert.ok(
      zeros.some((i) => g.grad[i] !== 0),
      "unmasked, pruned values get gradient",
    );
    free.dispose();
  } finally {
    engine.dispose();
  }
});

test("savedZeroIndices covers kernels of taken layers only; zeroAt zeroes just those entries", () => {
  const weights: WeightInfo[] = [
    { name: "a/kernel", shape: [2], size: 2, offset: 0, init: "glorot-uniform" },
    { name: "a/bias", shape: [1], size: 1, offset: 2, init: "zeros" },
    { name: "b/kernel", shape: [2], size: 2, offset: 3, init: "glorot-uniform" },
  ];
  const params = Float32Array.from([0, 1, 0, 0, 2]);
  assert.deepEqual(
    [...savedZeroIndices(weights, params, ["a"])],
    [0],
    "bias and the seeded layer b are left out",
  );
  assert.deepEqual([...savedZeroIndices(weights, params, ["a", "b"])], [0, 3]);
  const grad = Float32Array.from([5, 5, 5, 5, 5]);
  zeroAt(grad, Uint32Array.from([0, 3]));
  assert.deepEqual([...grad], [0, 5, 5, 0, 5]);
});

test("keepZeros without init is refused by the spec check and by the engine", async () => {
  const dataset = { source: csv(), format: "csv" as const, label: "y" };
  const spec: JobSpecInput = {
    model,
    dataset,
    optimizer: { name: "adam", lr: 0.01 },
    epochs: 1,
    globalBatch: 8,
    keepZeros: true,
  };
  assert.throws(
    () => parseJobSpec(spec),
    (e: unknown) => e instanceof InvalidJobSpecError && /keepZeros.*give init/.test(e.message),
  );
  assert.equal(parseJobSpec({ ...spec, init: "job://src" }).keepZeros, true);
  await assert.rejects(
    ComputeEngine.create({ model, dataset, backend: "cpu", keepZeros: true }),
    /keepZeros keeps the zeros of saved weights: give init/,
  );
});

test("the fine-tuning job's spec: the original's, a new id, init from the pruned folder, zeros kept", () => {
  const original = parseJobSpec({
    id: "orig",
    name: "flowers",
    model,
    dataset: { source: csv(), format: "csv", label: "y" },
    epochs: 20,
    globalBatch: 8,
    seed: 7,
    optimizer: { name: "adam", lr: 0.02 },
  });
  const url = pathToFileURL(join(dir, "pruned")).href;
  const tuned = finetuneSpec(original, url, 2);
  assert.notEqual(tuned.id, "orig");
  assert.equal(tuned.init, url);
  assert.equal(tuned.keepZeros, true);
  assert.equal(tuned.epochs, 2);
  assert.deepEqual(
    [tuned.dataset, tuned.model, tuned.seed, tuned.globalBatch, tuned.optimizer],
    [original.dataset, original.model, 7, 8, original.optimizer],
  );
  assert.deepEqual(finetuneSpec(original, url, 1, 0.001).optimizer, { name: "adam", lr: 0.001 });
});
