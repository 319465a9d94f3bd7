import { z } from "zod";
import { DEFAULT_MAX_LEN, DEFAULT_TOKENIZER_VOCAB, type DatasetSpec } from "../compute/dataset-spec.js";
import { BUILTIN_MODELS } from "../compute/model-zoo.js";
import { isTransformerSpec } from "../compute/transformer/model-config.js";

/**
 * What a job trains for, and the checks that need no build: `classify` (the default) predicts a
 * label per sample; `mlm` is masked-language-model pre-training (BERT's) on a tokenized text
 * corpus, labelled or not, with a model that predicts a token per position. A model given as a
 * layers config is checked when it is built against the dataset (`checkJobFits`, before placement).
 * @module
 */

/** A job's task. */
export const TaskSpec = z.enum(["classify", "mlm"]);
/** A job's task. */
export type TaskSpec = z.infer<typeof TaskSpec>;

/** BERT's masking rate. */
export const DEFAULT_MASK_RATE = 0.15;

/** Options of `task: "mlm"`: the fraction of each row's tokens predicted (80 % [MASK], 10 % random, 10 % kept). */
export const MlmSpec = z.strictObject({
  rate: z.number().gt(0).max(1).default(DEFAULT_MASK_RATE),
});
/** Options of `task: "mlm"`. */
export type MlmSpec = z.infer<typeof MlmSpec>;

/** The registered model a spec names (by name or transformer sizes), or undefined for a layers config. */
function registeredName(model: unknown): string | undefined {
  if (typeof model === "string") return Object.hasOwn(BUILTIN_MODELS, model) ? model : undefined;
  if (typeof model === "object" && model !== null && isTransformerSpec(model) && "name" in model)
    return String(model.name);
  return undefined;
}

/**
 * The model as the job's size bound should see it: a registered transformer without `vocabulary` /
 * `maxLen` takes them from an object `tokenizer` (an upper bound: training may learn fewer tokens),
 * not the defaults. A `file://` tokenizer is only known at load, where `transformer/sized.ts` bounds it.
 */
export function boundedModel(model: unknown, dataset: DatasetSpec): unknown {
  const files = typeof dataset === "object" && dataset.format !== "images" ? dataset : undefined;
  const tokenizer = files?.tokenizer;
  const name = registeredName(model);
  if (typeof tokenizer !== "object" || (name !== "text-transformer" && name !== "text-transformer-mlm"))
    return model;
  const fields =
    typeof model === "object" && model !== null ? Object.fromEntries(Object.entries(model)) : { name };
  return {
    ...fields,
    maxLen: fields.maxLen ?? tokenizer.maxLen ?? DEFAULT_MAX_LEN,
    vocabulary: fields.vocabulary ?? tokenizer.vocabSize ?? DEFAULT_TOKENIZER_VOCAB,
  };
}

/** The problems of a spec's `task` and `mlm` against its dataset and model. */
export function taskProblems(spec: {
  task: TaskSpec;
  mlm?: MlmSpec | undefined;
  model: unknown;
  dataset: DatasetSpec;
}): { path: string[]; message: string }[] {
  const problems: { path: string[]; message: string }[] = [];
  const files =
    typeof spec.dataset === "object" && spec.dataset.format !== "images" ? spec.dataset : undefined;
  const tokenized = files?.tokenizer !== undefined;
  const labelled = files?.label !== undefined || files === undefined;
  const name = registeredName(spec.model);
  if (spec.task === "mlm") {
    if (!tokenized)
      problems.push({
        path: ["dataset"],
        message: "task mlm needs a tokenized text dataset: a CSV / JSONL dataset with text and tokenizer",
      });
    if (name !== undefined && name !== "text-transformer-mlm")
      problems.push({
        path: ["model"],
        message: `task mlm needs a model whose output is [maxLen, vocabulary] (text-transformer-mlm), not "${name}"`,
      });
    return problems;
  }
  if (spec.mlm !== undefined) problems.push({ path: ["mlm"], message: 'mlm options need task "mlm"' });
  if (!labelled)
    problems.push({
      path: ["dataset", "label"],
      message:
        "a classification job needs labels: this dataset has no label (an unlabelled corpus is for task mlm)",
    });
  if (name === "text-transformer-mlm")
    problems.push({
      path: ["model"],
      message:
        'text-transformer-mlm predicts tokens, not classes: give task "mlm", or use text-transformer to classify',
    });
  return problems;
}
