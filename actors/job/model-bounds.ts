/**
 * What a job spec's model may cost, judged from its layers config without building it: a daemon
 * parses specs from the wire (the kinds' arguments), and a config whose layers imply a billion
 * parameters would make every trainer and reducer allocate them. The estimate is an upper bound
 * over the layers tfjs-layers supports here (spatial sizes are taken as preserved by convolutions
 * and pooling), computed in one pass; anything it cannot read is left to the model build.
 * @module
 */
import {
  TransformerSpec,
  isTransformerSpec,
  transformerConfig,
} from "../compute/transformer/model-config.js";

/** Most parameters a job's model may have: 64 MiB of float32 per replica (mnist-mlp has 101 770). */
export const MAX_MODEL_PARAMETERS = 16_000_000;
/** Most layers a model config may list. */
export const MAX_MODEL_LAYERS = 256;
/** Largest `units`, `filters` or embedding size of one layer. */
export const MAX_LAYER_UNITS = 65_536;
/** Largest model config, as JSON (the built-in ones are under 2 KB). */
export const MAX_MODEL_CONFIG_BYTES = 1 << 20;

const CONV = new Set(["Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D"]);
/** Layers without weights (or with a few per channel: the normalizations), which keep the size. */
const LIGHT = new Set([
  "Flatten",
  "Dropout",
  "SpatialDropout1D",
  "SpatialDropout2D",
  "GaussianNoise",
  "GaussianDropout",
  "AlphaDropout",
  "Activation",
  "ReLU",
  "LeakyReLU",
  "ELU",
  "Softmax",
  "ThresholdedReLU",
  "Reshape",
  "Permute",
  "InputLayer",
  "MaxPooling1D",
  "MaxPooling2D",
  "MaxPooling3D",
  "AveragePooling1D",
  "AveragePooling2D",
  "AveragePooling3D",
  "GlobalMaxPooling1D",
  "GlobalMaxPooling2D",
  "GlobalAveragePooling1D",
  "GlobalAveragePooling2D",
  "ZeroPadding2D",
  "Cropping2D",
  "UpSampling2D",
  "BatchNormalization",
  "LayerNormalization",
  "Add",
]);

interface Shape {
  /** Values per sample entering the layer. */
  width: number;
  /** Last dimension (channels, features). */
  channels: number;
}

/** Why a model config is too large, or undefined when it fits (or cannot be read: the build says why). */
export function modelTooLarge(spec: unknown): string | undefined {
  if (typeof spec !== "object" || spec === null) return undefined;
  const model = transformerSizes(spec);
  if (typeof model === "string") return model;
  let json: string;
  try {
    json = JSON.stringify(model);
  } catch {
    return "model config cannot be serialised (cyclic or too deep)";
  }
  if (json.length > MAX_MODEL_CONFIG_BYTES)
    return `model config is ${json.length} B as JSON; at most ${MAX_MODEL_CONFIG_BYTES} B are accepted`;
  const layers = layersOf(model);
  if (!layers) return undefined;
  if (layers.length > MAX_MODEL_LAYERS)
    return `model has ${layers.length} layers; at most ${MAX_MODEL_LAYERS} are accepted`;
  let shape = inputShape(layers[0]);
  let params = 0;
  for (const [i, layer] of layers.entries()) {
    const step = layerCost(layer, shape);
    if (typeof step === "string") return `layer ${i}: ${step}`;
    params += step.params;
    shape = step.shape;
    if (params > MAX_MODEL_PARAMETERS)
      return `model has at least ${params} parameters by layer ${i}; at most ${MAX_MODEL_PARAMETERS} are accepted`;
  }
  return undefined;
}

/**
 * A transformer named by its sizes becomes the layers config it builds (sized below like any
 * other), or why its sizes are invalid; any other spec is returned as it is.
 */
function transformerSizes(spec: object): object | string {
  if (!isTransformerSpec(spec)) return spec;
  const sizes = TransformerSpec.safeParse(spec);
  if (sizes.success) return transformerConfig(sizes.data);
  return `transformer sizes: ${sizes.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`;
}

function layersOf(model: object): unknown[] | undefined {
  const top: unknown = "modelTopology" in model ? model.modelTopology : model;
  if (typeof top !== "object" || top === null || !("config" in top)) return undefined;
  const config: unknown = top.config;
  if (typeof config !== "object" || config === null || !("layers" in config)) return undefined;
  return Array.isArray(config.layers) ? (config.layers as unknown[]) : undefined;
}

function field(layer: unknown, key: string): unknown {
  if (typeof layer !== "object" || layer === null || !("config" in layer)) return undefined;
  const config: unknown = layer.config;
  return typeof config === "object" && config !== null ? (config as Record<string, unknown>)[key] : undefined;
}

function inputShape(first: unknown): Shape {
  for (const key of ["batch_input_shape", "batchInputShape", "input_shape", "inputShape"]) {
    const dims = field(first, key);
    if (!Array.isArray(dims)) continue;
    const sizes = dims.filter((d): d is number => typeof d === "number" && d > 0);
    const width = sizes.reduce((a, d) => a * d, 1);
    return { width, channels: sizes.at(-1) ?? 1 };
  }
  return { width: 1, channels: 1 };
}

/** A layer's size field: absent is fine (some layers have none), out of range is not. */
function size(layer: unknown, key: string): number | string | undefined {
  const v = field(layer, key);
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_LAYER_UNITS)
    return `${key} must be an integer from 1 to ${MAX_LAYER_UNITS}`;
  return v;
}

function layerCost(layer: unknown, shape: Shape): { params: number; shape: Shape } | string {
  const cls =
    typeof layer === "object" && layer !== null && "class_name" in layer ? layer.class_name : undefined;
  if (cls === "Dense") {
    const units = size(layer, "units");
    if (typeof units !== "number") return units ?? "a Dense layer needs units";
    return { params: shape.width * units + units, shape: { width: units, channels: units } };
  }
  if (typeof cls === "string" && CONV.has(cls)) {
    const filters = size(layer, "filters") ?? shape.channels;
    if (typeof filters === "string") return filters;
    const k = field(layer, "kernel_size");
    const kernel = (Array.isArray(k) ? k : [k]).reduce<number>(
      (a, d) => a * (typeof d === "number" && d > 0 ? d : 1),
      1,
    );
    if (kernel > MAX_LAYER_UNITS) return `kernel_size must have at most ${MAX_LAYER_UNITS} elements`;
    const spatial = shape.width / Math.max(1, shape.channels);
    return {
      params: kernel * shape.channels * filters + filters,
      shape: { width: spatial * filters, channels: filters },
    };
  }
  if (cls === "Embedding") {
    const vocab = size(layer, "input_dim");
    const dim = size(layer, "output_dim");
    if (typeof vocab !== "number" || typeof dim !== "number")
      return "an Embedding needs input_dim and output_dim";
    return { params: vocab * dim, shape: { width: shape.width * dim, channels: dim } };
  }
  if (typeof cls === "string" && cls.startsWith("Flock")) return transformerLayerCost(cls, layer, shape);
  // A LayerNormalization over the last axis holds 2 values per channel (a transformer's runs on
  // [len, width]: 4 × width would count len times too many).
  if (cls === "LayerNormalization" && lastAxisOnly(field(layer, "axis")))
    return { params: 2 * shape.channels, shape };
  // The normalizations hold 2-4 values per channel: counted as 4 × width, an upper bound.
  if (cls === "BatchNormalization" || cls === "LayerNormalization") return { params: 4 * shape.width, shape };
  if (typeof cls === "string" && LIGHT.has(cls)) return { params: 0, shape };
  // Anything else may hold weights this check cannot size (LSTM(20000) would pass as 0 and
  // allocate 1.6e9 floats in every trainer): refused by name, before anything is built.
  return `layer class ${typeof cls === "string" ? JSON.stringify(cls.slice(0, 60)) : "(none)"} is not supported: flock sizes Dense, ${[...CONV].join(", ")}, Embedding and weight-free layers`;
}

function lastAxisOnly(axis: unknown): boolean {
  return axis === undefined || axis === -1 || (Array.isArray(axis) && axis.length === 1 && axis[0] === -1);
}

/**
 * The transformer layers (`actors/compute/transformer/`) state every size in their config, so
 * their cost does not depend on the shape this pass tracks (a functional model's layers need not
 * be listed in call order); the layers check at build time that their inputs have those sizes.
 */
function transformerLayerCost(
  cls: string,
  layer: unknown,
  shape: Shape,
): { params: number; shape: Shape } | string {
  const sizes = (...keys: string[]): number[] | string => {
    const out: number[] = [];
    for (const key of keys) {
      const v = size(layer, key);
      if (typeof v !== "number") return v ?? `a ${cls} needs ${keys.join(", ")}`;
      out.push(v);
    }
    return out;
  };
  const positions = Math.max(1, shape.width / Math.max(1, shape.channels));
  if (cls === "FlockClsPool")
    return { params: 0, shape: { width: shape.channels, channels: shape.channels } };
  const read = {
    FlockTokenEmbedding: ["vocabulary", "max_len", "width"],
    FlockSelfAttention: ["width", "heads"],
    FlockPositionDense: ["input_width", "units"],
    FlockLayerNorm: ["width"],
  }[cls];
  if (read === undefined) return `layer class ${JSON.stringify(cls.slice(0, 60))} is not supported`;
  const s = sizes(...read);
  if (typeof s === "string") return s;
  const [a = 0, b = 0, c = 0] = s;
  if (cls === "FlockTokenEmbedding") {
    const bias = field(layer, "output_bias") === true ? a : 0;
    return { params: a * c + b * c + bias, shape: { width: shape.width * c, channels: c } };
  }
  if (cls === "FlockLayerNorm") return { params: 2 * a, shape };
  if (cls === "FlockSelfAttention")
    return { params: 4 * (a * a + a), shape: { width: positions * a, channels: a } };
  return { params: a * b + b, shape: { width: positions * b, channels: b } };
}
