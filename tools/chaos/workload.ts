/**
 * The model a chaos run trains (`flock chaos --model`): the MNIST example's MLP (default), or a
 * BERT-style `text-transformer` classifying SpamAssassin messages, whose data the harness writes
 * into the run's log folder (every daemon runs on this machine, so a `file://` source reaches all).
 * @module
 */
import { join } from "node:path";
import { LABEL_FIELD, TEXT_FIELD, writeMiniBertData } from "../../actors/compute/spam-corpus.js";
import type { JobSpecInput } from "../../actors/job/spec.js";

/** The models `--model` names. */
export const CHAOS_MODELS = ["mlp", "transformer"] as const;
/** One of {@link CHAOS_MODELS}. */
export type ChaosModel = (typeof CHAOS_MODELS)[number];

/** Samples per epoch of the transformer job (20 steps of its batch of 32) and held out. */
const TRANSFORMER_CORPUS = { labelled: 640, test: 200, pretrain: 1, pretrainTest: 1, chars: 160, seed: 1 };

/**
 * The job spec fields of `model`'s chaos job, before the run's id, seed, epochs and modes are
 * added; `dataDir` receives the transformer's files. Both runs of a chaos run (baseline and
 * faulty) train on these same fields.
 */
export function chaosJobFields(model: ChaosModel, dataDir: string): Partial<JobSpecInput> {
  if (model === "mlp") return {};
  const data = writeMiniBertData(join(dataDir, "data"), TRANSFORMER_CORPUS);
  return {
    name: "spam-transformer",
    model: { name: "text-transformer", layers: 1, heads: 2, width: 32, ffn: 64 },
    dataset: {
      source: data.labelled.url,
      format: "jsonl",
      text: TEXT_FIELD,
      label: LABEL_FIELD,
      tokenizer: { vocabSize: 600, maxLen: 32 },
      test: data.test.url,
    },
    globalBatch: 32,
    optimizer: { name: "adam", lr: 1e-3 },
    // A transformer step on three loaded daemons sharing two cores can take seconds.
    stepDeadlineMs: 30_000,
  };
}

/**
 * Epochs of a chaos run on `model` when `--epochs` is not given. The transformer job commits
 * about 3 steps a second with 3 nodes on 2 cores (100 steps in 28 s, fault-free); sized for 6 a
 * second of faulty phase, since each fault waits for the last one's recovery and rejoin (a run of
 * 5 epochs for 30 s ended before its third fault).
 */
export function defaultModelEpochs(model: ChaosModel, mlpEpochs: number, durationSec: number): number {
  return model === "mlp" ? mlpEpochs : Math.max(4, Math.ceil((durationSec * 6) / 20));
}
