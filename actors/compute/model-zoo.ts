import type { LayersModelConfig } from "./models.js";
import { SPAM_VOCAB_SIZE } from "./dataset-spam.js";
import { TransformerSpec, transformerConfig } from "./transformer/model-config.js";

/** A dense layer config in tfjs-layers' serialised form (defaults written out by tfjs). */
export function dense(name: string, units: number, activation: string, inputSize?: number): object {
  return {
    class_name: "Dense",
    config: {
      name,
      units,
      activation,
      use_bias: true,
      ...(inputSize === undefined ? {} : { batch_input_shape: [null, inputSize] }),
    },
  };
}

function sequential(name: string, layers: object[]): LayersModelConfig {
  return { class_name: "Sequential", config: { name, layers } };
}

/**
 * Built-in models, as layers configs: the same format a job spec may carry. Outputs are logits
 * (linear); the engine applies softmax cross-entropy.
 * - `mnist-mlp`: 784 → 128 relu → 10 (101,770 parameters).
 * - `mnist-cnn`: 28×28×1 → conv 3×3×8 relu → maxpool 2 → flatten → 10 (needs the cpu backend
 *   or tfjs-node: wasm has no Conv2DBackpropFilter).
 * - `spam-bow`: 2000-token tf-idf → 64 relu → 2.
 * - `text-transformer`: 64 token ids → 2 pre-LN encoder blocks (width 64, 2 heads, vocabulary
 *   2000) → pooled `[CLS]` → 2 classes; `text-transformer-mlm`: the same encoder with a
 *   tied-embedding masked-LM head. Other sizes: `{ name, layers, heads, width, maxLen, vocabulary }`.
 */
export const BUILTIN_MODELS: Record<string, LayersModelConfig> = {
  "mnist-mlp": sequential("mnist-mlp", [dense("hidden", 128, "relu", 784), dense("logits", 10, "linear")]),
  "mnist-cnn": sequential("mnist-cnn", [
    {
      class_name: "Conv2D",
      config: {
        name: "conv",
        filters: 8,
        kernel_size: [3, 3],
        activation: "relu",
        batch_input_shape: [null, 28, 28, 1],
      },
    },
    { class_name: "MaxPooling2D", config: { name: "pool", pool_size: [2, 2] } },
    { class_name: "Flatten", config: { name: "flatten" } },
    dense("logits", 10, "linear"),
  ]),
  "spam-bow": sequential("spam-bow", [
    dense("hidden", 64, "relu", SPAM_VOCAB_SIZE),
    dense("logits", 2, "linear"),
  ]),
  "text-transformer": transformerConfig(TransformerSpec.parse({ name: "text-transformer" })),
  "text-transformer-mlm": transformerConfig(TransformerSpec.parse({ name: "text-transformer-mlm" })),
};
