/**
 * Pruning followed by fine-tuning on the embedded default (in-process bus, trainers in worker
 * threads): the example `flowers` model, trained and written with `flock train --out`'s code, is
 * pruned to 80 % of each kernel and fine-tuned for one epoch by `flock export`'s code
 * (`init: file://…`, `keepZeros: true`, the original spec otherwise). Every pruned value is still
 * exactly 0 in the written model, and its test accuracy is at least the pruned model's.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { resolveJobSpec } from "../../actors/api.js";
import { pruneWeights } from "../../actors/compute/prune.js";
import { readModelDir } from "../../actors/job/model-export.js";
import { train } from "../../actors/train.js";
import { finetunePruned } from "../../tools/cli/export-finetune.js";
import { compressModel, sourceFromDir } from "../../tools/cli/export.js";
import { scaleTimeout } from "../helpers/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "flock-prune-finetune-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test(
  "80 % pruned flowers fine-tuned with keepZeros: zeros stay exactly 0, accuracy recovers",
  { timeout: scaleTimeout(150_000) },
  async () => {
    const spec = resolveJobSpec(join(root, "examples/flowers.json"));
    const trained = join(dir, "trained");
    const first = await train(spec, { out: trained });
    assert.equal(first.status, "completed");

    const source = await sourceFromDir(trained);
    const out = join(dir, "tuned");
    const r = await compressModel(source, out, {
      prune: 0.8,
      finetune: (files, info) => finetunePruned(files, info, { spec, epochs: 1 }),
    });
    assert.ok(r.pruned && r.finetune, "the result has the pruned model's figures and the job's");
    assert.ok(r.finetune.steps > 0, `fine-tuning ran ${r.finetune.steps} steps`);
    // 80 % of each kernel, floor per kernel: 51 of 64 and 38 of 48.
    assert.equal(r.pruned.sparsity, 89 / 112);
    assert.equal(r.after.sparsity, r.pruned.sparsity, "fine-tuning kept every pruned value at 0");
    // The same positions: pruning is deterministic, so prune the source again and compare.
    const pruned = new Float32Array(
      pruneWeights(source.files.weightSpecs, source.files.weightData, 0.8).data.buffer,
    );
    const written = readModelDir(out).files;
    const tuned = new Float32Array(written.weightData.buffer, written.weightData.byteOffset, pruned.length);
    const zeros = [...pruned.keys()].filter((i) => pruned[i] === 0);
    assert.equal(zeros.length, 89);
    assert.ok(
      zeros.every((i) => tuned[i] === 0),
      "every pruned value is exactly 0 in the written model",
    );
    assert.ok(
      [...pruned.keys()].some((i) => pruned[i] !== 0 && tuned[i] !== pruned[i]),
      "the other values were trained",
    );
    assert.ok(
      r.after.accuracy >= r.pruned.accuracy,
      `fine-tuned ${r.after.accuracy} vs pruned ${r.pruned.accuracy} (before pruning ${r.before.accuracy})`,
    );
    console.log(
      `flowers: before ${r.before.accuracy}, 80 % pruned ${r.pruned.accuracy}, fine-tuned (${r.finetune.steps} steps) ${r.after.accuracy}`,
    );
  },
);
