/**
 * The mini-BERT example end to end on a real nats-server (JetStream) and two `flock daemon` child
 * processes, with a tiny configuration: `examples/mini-bert/main.js --nats` pre-trains
 * `text-transformer-mlm` (`task: "mlm"`) on unlabelled SpamAssassin bodies across both daemons,
 * fine-tunes `text-transformer` from the export, and trains the same classifier from scratch on the
 * same labelled subset. Checked: the masked-LM loss falls, and the fine-tuned classifier beats the
 * one from scratch on 96 labelled messages (scored on 400 held out); the exported
 * classifiers and their `flock.json` (tokenizer included) predict in a fresh `flock predict`
 * process exactly the test accuracy the jobs reported, twice over with identical lines; the data
 * the example wrote are the bytes the shared data module writes here (what every daemon read).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import type { PredictResult } from "../../actors/predictor/index.js";
import { writeMiniBertData, type MiniBertDataOptions } from "../../actors/compute/spam-corpus.js";
import type { MiniBertSummary } from "../../examples/mini-bert/workflow.js";
import {
  registerCleanup,
  scaleTimeout,
  spawnChild,
  useNatsServer,
  type ChildHandle,
} from "../helpers/index.js";
import { FLOCK, daemonWarnings, exitWithin, startDaemon, startedDaemons } from "./cluster-kit.js";

const CLUSTER = "mb";
const EXAMPLE = fileURLToPath(new URL("../../examples/mini-bert/main.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "flock-mini-bert-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** The tiny run: data sizes (also written here, to compare) and the example's flags. */
const DATA: MiniBertDataOptions = {
  labelled: 96,
  test: 400,
  pretrain: 3200,
  pretrainTest: 100,
  chars: 160,
  seed: 3,
};
const FLAGS = [
  ["--labelled", DATA.labelled],
  ["--test", DATA.test],
  ["--pretrain", DATA.pretrain],
  ["--pretrain-test", DATA.pretrainTest],
  ["--chars", DATA.chars],
  ["--seed", DATA.seed],
  ["--layers", 1],
  ["--heads", 2],
  ["--width", 32],
  ["--ffn", 64],
  ["--max-len", 32],
  ["--vocab-size", 600],
  // 400 steps of 32 bodies, warmed up: past the unigram plateau (see the example's DEFAULT_SIZES).
  ["--pretrain-epochs", 4],
  ["--pretrain-batch", 32],
  ["--pretrain-lr", 0.004],
  ["--pretrain-warmup", 50],
  ["--finetune-epochs", 4],
].flatMap(([flag, value]) => [String(flag), String(value)]);
/** The last stdout line of a finished command, parsed. */
function lastJson<T>(child: ChildHandle): T {
  return JSON.parse(child.stdout().trim().split("\n").at(-1) ?? "{}") as T;
}

async function predict(t: { after(fn: () => unknown): void }, model: string, input: string, name: string) {
  const out = join(dir, `${name}.jsonl`);
  const child = registerCleanup(
    t,
    spawnChild(process.execPath, [FLOCK, "predict", model, input, "--out", out, "--json"], { name }),
  );
  assert.equal(await exitWithin(child, scaleTimeout(120_000)), 0, child.output());
  return { result: lastJson<PredictResult>(child), lines: readFileSync(out, "utf8") };
}

test(
  "mini-BERT on two daemons: MLM loss falls, fine-tuned beats scratch, the export predicts what the job reported",
  { timeout: scaleTimeout(600_000) },
  async (t) => {
    t.after(() => {
      if (process.exitCode) console.error(daemonWarnings(startedDaemons));
    });
    const server = await useNatsServer(t, { jetstream: true });
    for (const id of ["a", "b"]) await startDaemon(t, [server.url], CLUSTER, id, ["--log-level", "warn"]);
    const work = join(dir, "run");
    const example = registerCleanup(
      t,
      spawnChild(
        process.execPath,
        [
          EXAMPLE,
          "--nats",
          server.url,
          "--cluster",
          CLUSTER,
          "--workers",
          "2",
          "--json",
          "--dir",
          work,
          "--report-dir",
          join(dir, "report"),
          ...FLAGS,
        ],
        { name: "mini-bert example" },
      ),
    );
    assert.equal(await exitWithin(example, scaleTimeout(480_000)), 0, example.output());
    const s = lastJson<MiniBertSummary>(example);
    t.diagnostic(
      `pretrain loss ${s.pretrainLossStart.toFixed(3)} → ${s.pretrainLossEnd.toFixed(3)}, masked accuracy ${s.pretrainMaskedAccuracy.toFixed(3)}, perplexity ${s.pretrainPerplexity.toFixed(1)}`,
    );
    t.diagnostic(
      `fine-tuned ${s.finetuneAccuracy.toFixed(3)} vs scratch ${s.scratchAccuracy.toFixed(3)} (${s.labelled} labelled, ${s.testExamples} held out), ${s.wallSeconds.toFixed(0)} s, ${s.backend}`,
    );
    assert.equal(s.workers, 2);
    assert.equal(s.labelled, DATA.labelled);
    assert.ok(s.pretrainLossEnd < s.pretrainLossStart, "the masked-LM loss falls");
    assert.ok(Number.isFinite(s.pretrainPerplexity) && s.pretrainPerplexity > 1, "a perplexity is reported");
    // Four epochs over 96 labelled messages: from scratch the classifier has seen too little to
    // read spam; the pre-trained encoder already tells words by their company.
    assert.ok(
      s.finetuneAccuracy > s.scratchAccuracy,
      `fine-tuned ${s.finetuneAccuracy} does not beat scratch ${s.scratchAccuracy}`,
    );
    assert.ok(existsSync(join(dir, "report", "index.html")), "the report is written");

    // The daemons read the files the example wrote; the shared data module writes the same bytes.
    const again = writeMiniBertData(join(dir, "again"), DATA);
    for (const f of ["pretrain", "pretrainTest", "labelled", "test"] as const)
      assert.equal(
        readFileSync(again[f].path, "utf8"),
        readFileSync(join(work, "data", `${f === "pretrainTest" ? "pretrain-test" : f}.jsonl`), "utf8"),
        `${f} is deterministic`,
      );

    // A fresh process predicts with the export alone (model.json, weights.bin, flock.json's tokenizer).
    const testFile = again.test.path;
    const tuned = await predict(t, s.models.finetune, testFile, "predict-finetuned");
    assert.equal(tuned.result.records, DATA.test);
    assert.equal(
      tuned.result.accuracy,
      s.finetuneAccuracy,
      "the fine-tuned export reproduces the job's accuracy",
    );
    const scratch = await predict(t, s.models.scratch, testFile, "predict-scratch");
    assert.equal(
      scratch.result.accuracy,
      s.scratchAccuracy,
      "the scratch export reproduces the job's accuracy",
    );
    const twice = await predict(t, s.models.finetune, testFile, "predict-finetuned-again");
    assert.equal(twice.lines, tuned.lines, "predictions are identical from one process to the next");
  },
);
