import { existsSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { resolveJobSpec } from "../../actors/api.js";
import type { PlainTrainOptions } from "../../actors/compute/baseline.js";
import { LABEL_FIELD, TEXT_FIELD, writeMiniBertData } from "../../actors/compute/spam-corpus.js";
import type { JobSpecInput } from "../../actors/job/spec.js";

/** The models the training figures measure: `mnist` (the example's 784→128→10) and `heavy`. */
export type Workload = "mnist" | "heavy";

/** The job example every training figure starts from. */
export const EXAMPLE = "mnist";

/**
 * The heavy workload's model: a BERT-style `text-transformer` (1 encoder block, 2 heads, width 32,
 * feed-forward 64; 32 tokens and a 1,000-piece WordPiece vocabulary learned at job start) that
 * classifies SpamAssassin messages as spam or ham. Measured on this 2-core machine (wasm, one
 * thread, load ~4): a batch of 64 takes ~250 ms, so its step is compute-bound (the example's MLP
 * step is ~10 ms). Sizes here and below are what a bench run can afford on 2 cores.
 */
export const HEAVY_MODEL = { name: "text-transformer", layers: 1, heads: 2, width: 32, ffn: 64 } as const;

/** Messages the heavy jobs train on (one epoch = 20 steps of the example's batch of 64) and test on. */
const HEAVY_CORPUS = { labelled: 1280, test: 400, pretrain: 1, pretrainTest: 1, chars: 240, seed: 1 };

/**
 * The heavy workload's data files, written once per machine (the same bytes every time) into a
 * folder of the temp dir: written to a fresh folder and renamed into place, so the bench's loop
 * threads and daemons that ask at once never read a half-written file.
 */
function heavyCorpus(): { train: string; test: string } {
  const dir = join(tmpdir(), "flock-bench-corpus-v1");
  const files = { train: join(dir, "labelled.jsonl"), test: join(dir, "test.jsonl") };
  if (!existsSync(files.train) || !existsSync(files.test)) {
    const fresh = mkdtempSync(join(tmpdir(), "flock-bench-corpus-"));
    writeMiniBertData(fresh, HEAVY_CORPUS);
    try {
      renameSync(fresh, dir);
    } catch {
      rmSync(fresh, { recursive: true, force: true }); // another process put it in place first
    }
  }
  return { train: pathToFileURL(files.train).href, test: pathToFileURL(files.test).href };
}

/**
 * Job spec overrides of a workload. The heavy job evaluates only at its end: one evaluation of
 * the test split on this model costs about as much as several steps, and its figure is about the
 * step's compute against its communication.
 */
export function workloadOverrides(workload: Workload): Partial<JobSpecInput> {
  if (workload !== "heavy") return {};
  const data = heavyCorpus();
  return {
    name: "spam-transformer",
    model: { ...HEAVY_MODEL },
    dataset: {
      source: data.train,
      format: "jsonl",
      text: TEXT_FIELD,
      label: LABEL_FIELD,
      tokenizer: { vocabSize: 1000, maxLen: 32 },
      test: data.test,
    },
    optimizer: { name: "adam", lr: 1e-3 },
    evalEvery: 1000,
  };
}

/** Options of the plain tfjs loop for a workload, with the one-worker job's batch. */
export function loopOptions(workload: Workload, steps: number): PlainTrainOptions {
  const base = resolveJobSpec(EXAMPLE, workloadOverrides(workload));
  return {
    model: base.model,
    dataset: base.dataset,
    backend: base.backend,
    batchSize: base.globalBatch,
    seed: base.seed,
    optimizer: base.optimizer,
    steps,
  };
}
