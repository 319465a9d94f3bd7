/**
 * The predictor actor: it answers a range only after its model is loaded, with the probabilities
 * the client's own prediction gives; requests of another run, of the wrong shape or before a
 * model are refused (a failure answer, counted), never thrown on; it stops itself when idle.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { resolveJobSpec } from "../../actors/api.js";
import { selectBackend } from "../../actors/compute/backend.js";
import { loadDataset } from "../../actors/compute/datasets.js";
import { buildModel } from "../../actors/compute/models.js";
import { exportModel } from "../../actors/job/model-export.js";
import { predictorBehavior } from "../../actors/predictor/behavior.js";
import { readPredictInput } from "../../actors/predictor/input.js";
import { openModel, readModelDir } from "../../actors/predictor/model.js";
import { predictRange } from "../../actors/predictor/predict.js";
import {
  PREDICTOR_MESSAGES,
  type PredictorCommand,
  type PredictorResult,
} from "../../actors/predictor/protocol.js";
import { VirtualScheduler } from "../../runtime/clock.js";
import { testSystem } from "../helpers/actors.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "flock-predict-actor-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** The flowers model with seeded weights, exported as `flock train --out` does. */
async function flowersModel(): Promise<string> {
  const spec = resolveJobSpec(join(root, "examples/flowers.json"));
  await selectBackend("cpu");
  const built = await buildModel(spec.model, await loadDataset(spec.dataset, spec.seed));
  let seed = 99;
  const params = Float32Array.from({ length: built.paramCount }, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed / 2 ** 32 - 0.5) * 0.8;
  });
  built.model.dispose();
  const out = join(dir, "model");
  await exportModel(spec, { v: 1, job: "t", step: 0, loss: 0, accuracy: 0, params, sha256: "" }, out);
  return out;
}

test("a predictor answers ranges once loaded, as the client predicts them; bad requests are refused", async (t) => {
  const modelDir = await flowersModel();
  const bundle = readModelDir(modelDir);
  const local = await openModel(bundle);
  const input = readPredictInput(join(root, "examples/data/flowers.csv"), local.preprocessing);
  const { sys } = await testSystem(t, ...PREDICTOR_MESSAGES);
  const s = new VirtualScheduler();
  const ref = sys.spawn(predictorBehavior({ run: "r1", idleMs: 10_000 }, { nodeId: "n1", scheduler: s }), {
    name: "predict-r1",
  });
  const ask = (msg: PredictorCommand) => ref.ask<PredictorResult>(msg, { timeoutMs: 30_000 });
  const range = (over: Partial<Extract<PredictorCommand, { type: "predictor.range" }>> = {}) =>
    ({
      type: "predictor.range",
      run: "r1",
      range: 1,
      attempt: 3,
      start: 64,
      n: 64,
      x: input.x.slice(64 * 4, 128 * 4),
      ...over,
    }) as const;

  await assert.rejects(ask(range()), /no-model/, "no model yet");
  const loaded = await ref.ask({ type: "predictor.load", run: "r1", ...bundle }, { timeoutMs: 60_000 });
  assert.equal(loaded.type, "predictor.loaded");
  await assert.rejects(ask(range({ run: "r2" })), /other-run/);
  await assert.rejects(ask(range({ n: 63 })), /shape-mismatch/);

  const answer = await ask(range());
  assert.equal(answer.type, "predictor.result");
  assert.deepEqual([answer.range, answer.attempt, answer.node], [1, 3, "n1"]);
  assert.deepEqual(
    answer.probs,
    await predictRange(local, input, 64, 128),
    "the client's own prediction, bit for bit",
  );

  // A foreign idle tick changes nothing; after idleMs without a message it stops itself.
  ref.tell({ type: "predictor.idle" });
  assert.equal((await ask(range())).type, "predictor.result");
  await s.runFor(12_000, 1_000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sys.has("predict-r1"), false, "stopped when idle");
  local.dispose();
});
