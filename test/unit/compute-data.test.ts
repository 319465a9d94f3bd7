import { test } from "node:test";
import assert from "node:assert/strict";
import {
  knownDatasets,
  loadDataset,
  paramHash,
  SampleIndexError,
  UnknownDatasetError,
} from "../../actors/compute/index.js";

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

test("mnist: sizes, pixel range and a pinned, deterministic order", async () => {
  const mnist = await loadDataset("mnist");
  assert.equal(mnist.trainSize, 8000);
  assert.equal(mnist.testSize, 2000);
  assert.equal(mnist.inputSize, 784);
  assert.equal(mnist.numClasses, 10);
  const batch = mnist.trainBatch(range(100));
  assert.equal(batch.n, 100);
  assert.equal(batch.x.length, 100 * 784);
  assert.ok(batch.x.every((v) => v >= 0 && v <= 1));
  // Pinned: the same bytes in every process and on every machine.
  assert.equal(paramHash(batch.x), "8bd008159b61c804");
  assert.deepEqual(Array.from(batch.y.slice(0, 10)), [1, 6, 7, 8, 2, 6, 8, 7, 1, 8]);
  assert.equal(paramHash(mnist.testBatch([0, 1, 2, 3]).x), "75393cdfe1cb0456");
  assert.equal(await loadDataset("mnist"), mnist, "cached per process");
});

test("spam-assassin: sizes, both classes mixed, pinned features", async () => {
  const spam = await loadDataset("spam-assassin");
  assert.equal(spam.trainSize + spam.testSize, 6046);
  assert.equal(spam.trainSize, 4867);
  assert.equal(spam.inputSize, 2000);
  assert.equal(spam.numClasses, 2);
  const batch = spam.trainBatch(range(100));
  assert.equal(paramHash(batch.x), "9e7a0f73bb193056");
  const spamShare = batch.y.reduce((s, y) => s + y, 0) / batch.n;
  assert.ok(spamShare > 0.15 && spamShare < 0.6, `a range mixes spam and ham (spam share ${spamShare})`);
  // tf-idf rows are L2-normalised (or empty).
  for (let r = 0; r < 10; r++) {
    const row = batch.x.subarray(r * 2000, (r + 1) * 2000);
    const norm = Math.sqrt(row.reduce((s, v) => s + v * v, 0));
    assert.ok(norm === 0 || Math.abs(norm - 1) < 1e-5);
  }
});

test("unknown datasets and out-of-range samples fail with typed errors", async () => {
  assert.deepEqual(knownDatasets(), ["mnist", "spam-assassin"]);
  await assert.rejects(loadDataset("cifar"), (err: unknown) => {
    assert.ok(err instanceof UnknownDatasetError);
    assert.deepEqual(err.known, ["mnist", "spam-assassin"]);
    assert.match(err.message, /mnist, spam-assassin/);
    return true;
  });
  const mnist = await loadDataset("mnist");
  assert.throws(() => mnist.trainBatch([8000]), SampleIndexError);
  assert.throws(() => mnist.testBatch([-1]), SampleIndexError);
  assert.throws(() => mnist.trainBatch([1.5]), SampleIndexError);
});
