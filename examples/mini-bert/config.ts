/**
 * The three jobs of the mini-BERT workflow as job specs: masked-LM pre-training on unlabelled
 * bodies, fine-tuning the classifier from the pre-trained export, and the same classifier trained
 * from scratch on the same labelled subset, with the same tokenizer, epochs, batch and seed.
 * @module
 */
import { pathToFileURL } from "node:url";
import type { JobSpecInput } from "../../actors/job/spec.js";
import { LABEL_FIELD, TEXT_FIELD, type MiniBertData } from "../../actors/compute/spam-corpus.js";

/** The sizes of one run (the example's defaults, or the integration test's tiny ones). */
export interface MiniBertSizes {
  /** Encoder blocks, attention heads, hidden width. */
  layers: number;
  heads: number;
  width: number;
  /** Feed-forward inner width. */
  ffn: number;
  /** Tokens per sample, `[CLS]` and `[SEP]` included. */
  maxLen: number;
  /** WordPiece vocabulary learned from the pre-training bodies. */
  vocabSize: number;
  pretrainEpochs: number;
  pretrainBatch: number;
  pretrainLr: number;
  /** Steps of linear learning-rate warmup of pre-training (the optimizer's `warmup`). */
  pretrainWarmup: number;
  /** Epochs over the labelled subset, for fine-tuning and for scratch alike. */
  finetuneEpochs: number;
  finetuneBatch: number;
  finetuneLr: number;
  /** Fraction of tokens masked (BERT: 0.15). */
  maskRate: number;
  seed: number;
}

/**
 * The example's default sizes: a run of a few minutes on two loaded CPU cores (wasm backend).
 * Pre-training is 400 steps of 32 bodies (3,200 bodies, 4 epochs) at Adam 0.004 warmed up over
 * 50 steps: enough to leave the unigram plateau (masked accuracy ~0.05, where the former 100
 * steps of 16 stayed), after which the encoder helps a few-label classifier (README figures).
 */
export const DEFAULT_SIZES: MiniBertSizes = {
  layers: 1,
  heads: 2,
  width: 32,
  ffn: 64,
  maxLen: 32,
  vocabSize: 600,
  pretrainEpochs: 4,
  pretrainBatch: 32,
  pretrainLr: 0.004,
  pretrainWarmup: 50,
  finetuneEpochs: 6,
  finetuneBatch: 16,
  finetuneLr: 0.001,
  maskRate: 0.15,
  seed: 1,
};

/** Settings every phase shares: where it runs and how often it is evaluated. */
export interface PhaseCommon {
  /** Trainers (minWorkers = maxWorkers = workers, so every phase uses the same nodes). */
  workers: number;
  /** Evaluate every K steps (and at the end). */
  evalEvery?: number;
}

function common(c: PhaseCommon, s: MiniBertSizes) {
  return {
    minWorkers: c.workers,
    maxWorkers: c.workers,
    seed: s.seed,
    evalEvery: c.evalEvery ?? 20,
    // A step of a transformer on a loaded two-core machine can take seconds.
    stepDeadlineMs: 120_000,
  };
}

/** Pre-training: `text-transformer-mlm`, `task: "mlm"`, a vocabulary learned at job start. */
export function pretrainJob(data: MiniBertData, s: MiniBertSizes, c: PhaseCommon): JobSpecInput {
  return {
    name: "mini-bert-pretrain",
    model: { name: "text-transformer-mlm", layers: s.layers, heads: s.heads, width: s.width, ffn: s.ffn },
    dataset: {
      source: data.pretrain.url,
      format: "jsonl",
      text: TEXT_FIELD,
      tokenizer: { vocabSize: s.vocabSize, maxLen: s.maxLen },
      test: data.pretrainTest.url,
    },
    task: "mlm",
    mlm: { rate: s.maskRate },
    epochs: s.pretrainEpochs,
    globalBatch: s.pretrainBatch,
    optimizer: { name: "adam", lr: s.pretrainLr, warmup: s.pretrainWarmup },
    ...common(c, s),
  };
}

/**
 * The spam/ham classifier on the labelled subset, reading text with the pre-trained export's
 * tokenizer; `init` (the export) makes it the fine-tuning job, without it the from-scratch one.
 */
export function classifierJob(
  data: MiniBertData,
  s: MiniBertSizes,
  c: PhaseCommon,
  pretrainedDir: string,
  init: boolean,
): JobSpecInput {
  const exported = pathToFileURL(pretrainedDir).href;
  return {
    name: init ? "mini-bert-finetune" : "mini-bert-scratch",
    model: {
      name: "text-transformer",
      layers: s.layers,
      heads: s.heads,
      width: s.width,
      ffn: s.ffn,
      classes: 2,
    },
    dataset: {
      source: data.labelled.url,
      format: "jsonl",
      text: TEXT_FIELD,
      label: LABEL_FIELD,
      tokenizer: exported,
      test: data.test.url,
    },
    ...(init ? { init: exported } : {}),
    epochs: s.finetuneEpochs,
    globalBatch: s.finetuneBatch,
    optimizer: { name: "adam", lr: s.finetuneLr },
    ...common(c, s),
  };
}
