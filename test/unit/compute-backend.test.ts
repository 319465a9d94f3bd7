import { test } from "node:test";
import assert from "node:assert/strict";
import { NoBackendError, selectBackend } from "../../actors/compute/index.js";

test("auto selects the best backend that loads and reports every skipped one", async () => {
  const chosen = await selectBackend("auto");
  // tfjs-node(-gpu) are not installed in this repository's CI; wasm is the best that loads.
  assert.equal(chosen.name, "wasm");
  assert.match(chosen.device, /^cpu:wasm/);
  assert.equal(chosen.tf.getBackend(), "wasm");
  assert.deepEqual(
    chosen.skipped.map((s) => s.backend),
    ["tensorflow-gpu", "tensorflow"],
  );
  for (const s of chosen.skipped) assert.match(s.reason, /not installed/);
});

test("cpu preference falls back from libtensorflow to the pure-JS backend", async () => {
  const chosen = await selectBackend("cpu");
  assert.equal(chosen.name, "cpu");
  assert.equal(chosen.device, "cpu:js");
  assert.equal(chosen.tf.getBackend(), "cpu");
  assert.deepEqual(
    chosen.skipped.map((s) => s.backend),
    ["tensorflow"],
  );
});

test("a conv model skips wasm, which lacks Conv2DBackpropFilter", async () => {
  const chosen = await selectBackend("auto", { requires: "conv" });
  assert.equal(chosen.name, "cpu");
  const wasm = chosen.skipped.find((s) => s.backend === "wasm");
  assert.ok(wasm, "wasm is listed as skipped");
  assert.match(wasm.reason, /Conv2DBackpropFilter/);
});

test("an unsatisfiable preference throws NoBackendError with the reasons", async () => {
  await assert.rejects(selectBackend("gpu"), (err: unknown) => {
    assert.ok(err instanceof NoBackendError);
    assert.equal(err.skipped[0]?.backend, "tensorflow-gpu");
    return true;
  });
  await assert.rejects(selectBackend("wasm", { requires: "conv" }), NoBackendError);
});

test("selection is cached and re-activates its backend", async () => {
  const wasm = await selectBackend("wasm");
  await selectBackend("cpu");
  assert.equal(wasm.tf.getBackend(), "cpu");
  const again = await selectBackend("wasm");
  assert.equal(again, wasm);
  assert.equal(again.tf.getBackend(), "wasm");
});
