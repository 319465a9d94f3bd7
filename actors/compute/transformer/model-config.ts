import { z } from "zod";
import { LIMITS } from "./limits.js";

/**
 * The registered transformer models as tfjs-layers configs (functional `Model` JSON, snake case,
 * as `model.toJSON()` writes it), generated from a few sizes. A job names one by name (default
 * sizes) or by `{ name, layers, heads, width, maxLen, vocabulary, ffn?, classes? }`; the config
 * is what travels and what an export saves, so a model is still built from registered classes
 * only. The encoder is pre-LN (each block normalises its input, a final layer norm closes
 * the stack), which trains without a learning-rate warm-up.
 * @module
 */

/** Names of the transformer models. */
export const TRANSFORMER_MODELS = ["text-transformer", "text-transformer-mlm"] as const;
/** One of {@link TRANSFORMER_MODELS}. */
export type TransformerModelName = (typeof TRANSFORMER_MODELS)[number];

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** A transformer model named with its sizes (a job spec's `model` field). */
export const TransformerSpec = z
  .strictObject({
    name: z.enum(TRANSFORMER_MODELS),
    /** Encoder blocks. */
    layers: int(1, LIMITS.layers).default(2),
    /** Attention heads per block; must divide `width`. */
    heads: int(1, LIMITS.heads).default(2),
    /** Hidden width. */
    width: int(2, LIMITS.width).default(64),
    /** Tokens per sample, `[CLS]` included: the model's input size. */
    maxLen: int(2, LIMITS.maxLen).default(64),
    /** Token ids are `0 .. vocabulary-1` (the tokenizer's size). */
    vocabulary: int(8, LIMITS.vocabulary).default(2000),
    /** Feed-forward inner width; default 4 × width. */
    ffn: int(1, LIMITS.ffn).optional(),
    /** Classes of `text-transformer`'s head; default 2. */
    classes: int(2, LIMITS.classes).default(2),
  })
  .refine((s) => s.width % s.heads === 0, { message: "heads must divide width", path: ["heads"] });
/** A transformer's sizes, defaults applied. */
export type TransformerSpec = z.infer<typeof TransformerSpec>;

/** Whether a model spec names a transformer by sizes (not a layers config, which has `class_name`). */
export function isTransformerSpec(spec: object): boolean {
  if ("class_name" in spec || "modelTopology" in spec || !("name" in spec)) return false;
  return TRANSFORMER_MODELS.some((n) => n === spec.name);
}

type Inbound = readonly (readonly [layer: string, node: number])[];

interface LayerJson {
  class_name: string;
  config: Record<string, unknown>;
  name: string;
  inbound_nodes: unknown[];
}

function node(
  className: string,
  name: string,
  config: Record<string, unknown>,
  ...calls: Inbound[]
): LayerJson {
  return {
    class_name: className,
    config: { name, trainable: true, ...config },
    name,
    inbound_nodes: calls.map((inputs) => inputs.map(([layer, index]) => [layer, index, 0, {}])),
  };
}

const norm = (name: string, input: string, width: number) =>
  node("FlockLayerNorm", name, { width, epsilon: 1e-5 }, [[input, 0]]);

const positionDense = (name: string, input: string, inputWidth: number, units: number, activation: string) =>
  node("FlockPositionDense", name, { input_width: inputWidth, units, activation }, [[input, 0]]);

/** One pre-LN encoder block after `input`; returns its layers and the name of its output. */
function block(i: number, input: string, s: TransformerSpec): { layers: LayerJson[]; output: string } {
  const p = `block${i}`;
  const ffn = s.ffn ?? 4 * s.width;
  const layers = [
    norm(`${p}_attention_norm`, input, s.width),
    node("FlockSelfAttention", `${p}_attention`, { width: s.width, heads: s.heads }, [
      [`${p}_attention_norm`, 0],
      ["ids", 0],
    ]),
    node("Add", `${p}_attention_residual`, {}, [
      [input, 0],
      [`${p}_attention`, 0],
    ]),
    norm(`${p}_ffn_norm`, `${p}_attention_residual`, s.width),
    positionDense(`${p}_ffn_inner`, `${p}_ffn_norm`, s.width, ffn, "gelu"),
    positionDense(`${p}_ffn_outer`, `${p}_ffn_inner`, ffn, s.width, "linear"),
    node("Add", `${p}_ffn_residual`, {}, [
      [`${p}_attention_residual`, 0],
      [`${p}_ffn_outer`, 0],
    ]),
  ];
  return { layers, output: `${p}_ffn_residual` };
}

const dense = (name: string, input: string, units: number, activation: string) =>
  node("Dense", name, { units, activation, use_bias: true }, [[input, 0]]);

/**
 * The layers config of a transformer: input `[maxLen]` token ids (float32, as datasets hand
 * out samples), `[PAD]` = id 0 masked, `[CLS]` at position 0. `text-transformer` outputs
 * `[classes]` logits from the pooled `[CLS]` state; `text-transformer-mlm` outputs
 * `[maxLen, vocabulary]` logits from the tied embedding (the `token` layer's second node).
 */
export function transformerConfig(spec: TransformerSpec): {
  class_name: string;
  config: Record<string, unknown>;
} {
  const mlm = spec.name === "text-transformer-mlm";
  const layers: LayerJson[] = [
    node("InputLayer", "ids", { batch_input_shape: [null, spec.maxLen], dtype: "float32", sparse: false }),
  ];
  layers.push(
    node(
      "FlockTokenEmbedding",
      "token",
      { vocabulary: spec.vocabulary, max_len: spec.maxLen, width: spec.width, output_bias: mlm },
      [["ids", 0]],
      ...(mlm ? [[["mlm_norm", 0] as const]] : []),
    ),
  );
  let hidden = "token";
  for (let i = 0; i < spec.layers; i++) {
    const b = block(i, hidden, spec);
    layers.push(...b.layers);
    hidden = b.output;
  }
  layers.push(norm("final_norm", hidden, spec.width));
  let output: [string, number, number];
  if (mlm) {
    layers.push(positionDense("mlm_transform", "final_norm", spec.width, spec.width, "gelu"));
    layers.push(norm("mlm_norm", "mlm_transform", spec.width));
    output = ["token", 1, 0];
  } else {
    layers.push(node("FlockClsPool", "cls", {}, [["final_norm", 0]]));
    layers.push(dense("pooler", "cls", spec.width, "tanh"));
    layers.push(dense("logits", "pooler", spec.classes, "linear"));
    output = ["logits", 0, 0];
  }
  return {
    class_name: "Model",
    config: { name: spec.name, layers, input_layers: [["ids", 0, 0]], output_layers: [output] },
  };
}

/** Trainable parameters of a transformer, by its sizes (the formula the bounds check relies on). */
export function transformerParams(s: TransformerSpec): number {
  const ffn = s.ffn ?? 4 * s.width;
  const w = s.width;
  const embedding = s.vocabulary * w + s.maxLen * w;
  const perBlock = 2 * w + 4 * (w * w + w) + 2 * w + (w * ffn + ffn) + (ffn * w + w);
  const head =
    s.name === "text-transformer-mlm"
      ? w * w + w + 2 * w + s.vocabulary
      : w * w + w + w * s.classes + s.classes;
  return embedding + s.layers * perBlock + 2 * w + head;
}
