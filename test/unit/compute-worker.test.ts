import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ComputeEngine,
  ComputeWorker,
  ComputeWorkerError,
  ModelDataMismatchError,
  paramHash,
  SampleIndexError,
  UnknownDatasetError,
  WorkerClosedError,
} from "../../actors/compute/index.js";

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

test("a worker computes what an in-process engine computes", async () => {
  await using worker = await ComputeWorker.start({
    model: "mnist-mlp",
    dataset: "mnist",
    backend: "wasm",
    seed: 4,
  });
  assert.equal(worker.info?.backend, "wasm");
  assert.equal(worker.info?.paramCount, 101770);
  const local = await ComputeEngine.create({
    model: "mnist-mlp",
    dataset: "mnist",
    backend: "wasm",
    seed: 4,
  });

  const params = await worker.initParams();
  assert.equal(paramHash(params), paramHash(local.initParams()));
  params[0] = 0.5;
  await worker.setParams(params);
  local.setParams(params);
  assert.equal(params.length, 101770, "setParams copies by default");
  assert.equal(paramHash(await worker.getParams()), paramHash(params));

  const remote = await worker.gradients(range(32));
  const here = local.gradients(range(32));
  assert.equal(remote.n, 32);
  assert.ok(remote.grad instanceof Float32Array);
  assert.equal(paramHash(remote.grad), paramHash(here.grad), "same backend, same bytes");
  assert.deepEqual(await worker.evaluate(range(100)), local.evaluate(range(100)));

  await worker.setParams(params, { transfer: true });
  assert.equal(params.length, 0, "transfer detaches the caller's buffer");
  local.dispose();
});

test("the caller's event loop keeps running while the worker computes", async () => {
  await using worker = await ComputeWorker.start({ model: "mnist-mlp", dataset: "mnist", backend: "wasm" });
  let maxGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 10);
  const started = performance.now();
  let computed = 0;
  try {
    // Several large batches: well over a second of tensor work in the worker thread.
    for (let i = 0; i < 4; i++) computed += (await worker.gradients(range(2000, i * 2000))).n;
  } finally {
    clearInterval(timer);
  }
  const busyMs = performance.now() - started;
  assert.equal(computed, 8000);
  assert.ok(busyMs > 200, `the worker was busy for ${busyMs.toFixed(0)} ms`);
  assert.ok(maxGap < 200, `max event-loop gap ${maxGap.toFixed(1)} ms during ${busyMs.toFixed(0)} ms`);
});

test("worker errors reject with ComputeWorkerError and the revived cause", async () => {
  const worker = new ComputeWorker();
  await assert.rejects(
    worker.init({ model: "spam-bow", dataset: "mnist", backend: "wasm" }),
    (err: unknown) => {
      assert.ok(err instanceof ComputeWorkerError);
      assert.ok(err.cause instanceof ModelDataMismatchError);
      assert.match(err.cause.message, /\[2000\]/);
      return true;
    },
  );
  await assert.rejects(worker.gradients([0]), (err: unknown) => {
    assert.ok(err instanceof ComputeWorkerError);
    assert.match(String((err.cause as Error).message), /before a successful "init"/);
    return true;
  });
  await assert.rejects(worker.init({ model: "mnist-mlp", dataset: "nope" }), (err: unknown) => {
    assert.ok(err instanceof ComputeWorkerError && err.cause instanceof UnknownDatasetError);
    assert.deepEqual(err.cause.known, ["mnist", "spam-assassin"]);
    return true;
  });
  await worker.init({ model: "mnist-mlp", dataset: "mnist", backend: "wasm" });
  await assert.rejects(worker.gradients([123456]), (err: unknown) => {
    assert.ok(err instanceof ComputeWorkerError && err.cause instanceof SampleIndexError);
    assert.equal(err.cause.index, 123456);
    return true;
  });
  // A worker stays usable after a failed request.
  assert.equal((await worker.gradients([1, 2])).n, 2);

  const inFlight = worker.gradients(range(4000));
  const rejected = assert.rejects(inFlight, WorkerClosedError);
  await worker.close();
  await rejected;
  await assert.rejects(worker.evaluate(), WorkerClosedError);
  await worker.close(); // idempotent
});
