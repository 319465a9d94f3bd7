import { test } from "node:test";
import assert from "node:assert/strict";
import { ComputeWorker, WorkerClosedError } from "../../actors/compute/index.js";
import { WORKER_RESOURCE_LIMITS } from "../../actors/compute/worker.js";

test("a compute worker runs under heap limits that fit MNIST", async () => {
  await using worker = await ComputeWorker.start({
    model: "mnist-mlp",
    dataset: "mnist",
    backend: "cpu",
    seed: 1,
  });
  assert.equal(worker.resourceLimits.maxOldGenerationSizeMb, WORKER_RESOURCE_LIMITS.maxOldGenerationSizeMb);
  assert.equal(worker.resourceLimits.stackSizeMb, WORKER_RESOURCE_LIMITS.stackSizeMb);
  await worker.initParams();
  const g = await worker.gradients(Array.from({ length: 256 }, (_, i) => i));
  assert.equal(g.n, 256);
});

test("a worker past its heap limit dies alone, with WorkerClosedError, and the caller lives on", async () => {
  // 8 MB of old generation cannot even hold tfjs and the MNIST loader.
  await assert.rejects(
    ComputeWorker.start(
      { model: "mnist-mlp", dataset: "mnist", backend: "cpu", seed: 1 },
      { maxOldGenerationSizeMb: 8 },
    ),
    (e: unknown) =>
      e instanceof WorkerClosedError &&
      e.cause instanceof Error &&
      "code" in e.cause &&
      e.cause.code === "ERR_WORKER_OUT_OF_MEMORY",
  );
});
