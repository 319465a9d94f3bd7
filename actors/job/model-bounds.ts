/**
 * What a job spec's model may cost, judged from its layers config without building it: a daemon
 * parses specs from the wire (the kinds' arguments), and a config whose layers imply a billion
 * parameters would make every trainer and reducer allocate them. The estimate is an upper bound
 * over the layers tfjs-layers supports here (spatial sizes are taken as preserved by convolutions
 * and pooling), computed in one pass; anything it cannot read is left to the model build.
 * @module
 */

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
]);

interface Shape {
  /** Values per sample entering the layer. */
  width: number;
  /** Last dimension (channels, features). */
  channels: number;
}

/** Why a model config is too large, or undefined when it fits (or cannot be read: the build says why). */
export function modelTooLarge(model: unknown): string | undefined {
  if (typeof model !== "object" || model === null) return undefined;
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
  // The normalizations hold 2-4 values per channel: counted as 4 × width, an upper bound.
  if (cls === "BatchNormalization" || cls === "LayerNormalization") return { params: 4 * shape.width, shape };
  if (typeof cls === "string" && LIGHT.has(cls)) return { params: 0, shape };
  // Anything else may hold weights this check cannot size (LSTM(20000) would pass as 0 and
  // allocate 1.6e9 floats in every trainer): refused by name, before anything is built.
  return `layer class ${typeof cls === "string" ? JSON.stringify(cls.slice(0, 60)) : "(none)"} is not supported: flock sizes Dense, ${[...CONV].join(", ")}, Embedding and weight-free layers`;
}
