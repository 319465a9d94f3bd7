/**
 * A registered transformer sized by its dataset: a tokenized dataset fixes `maxLen` (ids per
 * sample) and `vocabulary` (the tokenizer's size), and a labelled one the classifier's `classes`,
 * so a job names `text-transformer` without repeating them. A size the job does give must agree.
 * @module
 */
import { InvalidModelConfigError } from "../errors.js";
import { LIMITS } from "./limits.js";
import { TRANSFORMER_MODELS, TransformerSpec, isTransformerSpec, transformerParams } from "./model-config.js";

/** What a dataset says about a transformer's sizes. */
export interface SizingData {
  name: string;
  numClasses: number;
  tokens?: { maxLen: number; vocabulary: number } | undefined;
}

/**
 * `spec` with the dataset's sizes filled in when it names a transformer (by name or sizes);
 * any other spec as it is. Throws {@link InvalidModelConfigError} when the dataset has no token
 * ids, or a size the spec gives differs from the dataset's (naming both).
 */
export function sizeForDataset<S>(spec: S, data: SizingData): S | Record<string, unknown> {
  const raw = transformerFields(spec);
  if (raw === undefined) return spec;
  const model = String(raw.name);
  const tokens = data.tokens;
  if (!tokens)
    throw new InvalidModelConfigError(
      `model "${model}" reads token ids, but dataset "${data.name}" has none: give the dataset a text field and a tokenizer`,
    );
  const out: Record<string, unknown> = { ...raw };
  const fill = (key: string, value: number) => {
    if (out[key] === undefined) out[key] = value;
    else if (out[key] !== value)
      throw new InvalidModelConfigError(
        `model "${model}" has ${key} ${JSON.stringify(out[key])} but dataset "${data.name}" has ${key} ${value}: leave ${key} out to take the dataset's`,
      );
  };
  fill("maxLen", tokens.maxLen);
  fill("vocabulary", tokens.vocabulary);
  // An unlabelled corpus (0 classes) says nothing about a classifier's head.
  if (model === "text-transformer" && data.numClasses >= 2) fill("classes", data.numClasses);
  // Bounded before anything is allocated: the dataset's vocabulary may be far larger than the default.
  const sizes = TransformerSpec.safeParse(out);
  if (sizes.success && transformerParams(sizes.data) > LIMITS.params)
    throw new InvalidModelConfigError(
      `model "${model}" on dataset "${data.name}" (vocabulary ${tokens.vocabulary}, maxLen ${tokens.maxLen}) has ${transformerParams(sizes.data)} parameters; at most ${LIMITS.params} are accepted`,
    );
  return out;
}

/** The fields of a transformer spec (a registered name is `{ name }`), or undefined for other specs. */
function transformerFields(spec: unknown): Record<string, unknown> | undefined {
  if (typeof spec === "string")
    return TRANSFORMER_MODELS.some((n) => n === spec) ? { name: spec } : undefined;
  if (typeof spec !== "object" || spec === null || !isTransformerSpec(spec)) return undefined;
  return Object.fromEntries(Object.entries(spec));
}
