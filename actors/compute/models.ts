import * as tfl from "@tensorflow/tfjs-layers";
import type { Tensor } from "@tensorflow/tfjs-core";
import type { ModelRequirement } from "./backend.js";
import type { Dataset } from "./dataset-core.js";
import { InvalidModelConfigError, ModelDataMismatchError, UnknownModelError } from "./errors.js";
import { BUILTIN_MODELS } from "./model-zoo.js";
// Registers the transformer layer classes, so configs naming them build in this process.
import { TransformerSpec, isTransformerSpec, transformerConfig } from "./transformer/index.js";
import { sizeForDataset, type SizingData } from "./transformer/sized.js";

/**
 * The JSON of a tfjs-layers model, as `model.toJSON(null, false)` writes it (Keras style, snake
 * case): `{ class_name: "Sequential", config: { layers: [...] } }`. Only configuration travels,
 * never code: tfjs-layers builds it from its own registered layer classes.
 */
export interface LayersModelConfig {
  class_name: string;
  config: Record<string, unknown>;
  [key: string]: unknown;
}

/**
 * A model: a registry name, a layers config, or a `model.json`-style `{ modelTopology }` wrapper.
 * Any parsed-JSON object is accepted too (a job spec's `model` field) and checked at runtime,
 * throwing {@link InvalidModelConfigError} when it is neither shape.
 */
export type ModelSpec =
  string | LayersModelConfig | { modelTopology: LayersModelConfig } | Readonly<Record<string, unknown>>;

/** How one trainable weight is initialised by `initParams` (see the engine). */
export type WeightInit = "glorot-uniform" | "zeros" | "ones";

/** One trainable weight, in flat-parameter order. */
export interface WeightInfo {
  name: string;
  shape: number[];
  size: number;
  /** Offset of its first value in the flat parameter vector. */
  offset: number;
  init: WeightInit;
}

/** A built model and what the engine needs to know about it. */
export interface BuiltModel {
  /** The registry name, or the config's `config.name`, or `"custom"`. */
  name: string;
  model: tfl.LayersModel;
  /** Input shape of one sample (without the batch dimension). */
  inputShape: number[];
  /** True when the last layer applies softmax, so the output is probabilities, not logits. */
  outputsProbabilities: boolean;
  requires: ModelRequirement;
  weights: WeightInfo[];
  paramCount: number;
}

const CONV_CLASSES = new Set([
  "Conv1D",
  "Conv2D",
  "Conv3D",
  "Conv2DTranspose",
  "SeparableConv2D",
  "DepthwiseConv2D",
]);
const UNSUPPORTED_KEYS = [
  "kernel_regularizer",
  "bias_regularizer",
  "activity_regularizer",
  "kernel_constraint",
  "bias_constraint",
];

/** Names of the built-in models. */
export function knownModels(): string[] {
  return Object.keys(BUILTIN_MODELS).sort();
}

/** The layers config of a spec (a deep copy for built-ins); throws {@link UnknownModelError}. */
export function resolveModelConfig(spec: ModelSpec): LayersModelConfig {
  if (typeof spec === "string") {
    const config = Object.hasOwn(BUILTIN_MODELS, spec) ? BUILTIN_MODELS[spec] : undefined;
    if (config === undefined) throw new UnknownModelError(spec, knownModels());
    return structuredClone(config);
  }
  if (typeof spec !== "object" || spec === null) {
    throw new InvalidModelConfigError(`a model is a registry name or a layers config, got ${typeof spec}`);
  }
  if (isTransformerSpec(spec)) {
    const sizes = TransformerSpec.safeParse(spec);
    if (!sizes.success)
      throw new InvalidModelConfigError(
        `transformer sizes: ${sizes.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      );
    return transformerConfig(sizes.data);
  }
  const config: unknown = "modelTopology" in spec ? spec.modelTopology : spec;
  const candidate = config as Partial<LayersModelConfig> | null;
  if (
    typeof candidate !== "object" ||
    candidate === null ||
    typeof candidate.class_name !== "string" ||
    typeof candidate.config !== "object" ||
    candidate.config === null
  ) {
    throw new InvalidModelConfigError("a model config needs a string class_name and a config object");
  }
  return candidate as LayersModelConfig;
}

/** The layer configs of a Sequential (or functional) model config. */
function layerConfigs(
  config: LayersModelConfig,
): { class_name?: unknown; config?: Record<string, unknown> }[] {
  const layers = config.config?.layers;
  if (!Array.isArray(layers)) throw new InvalidModelConfigError("model config has no config.layers array");
  return layers as { class_name?: unknown; config?: Record<string, unknown> }[];
}

/** `conv` when any layer is a convolution (wasm lacks Conv2DBackpropFilter), else `dense`. */
export function modelRequirement(spec: ModelSpec): ModelRequirement {
  const layers = layerConfigs(resolveModelConfig(spec));
  return layers.some((l) => CONV_CLASSES.has(String(l.class_name))) ? "conv" : "dense";
}

/** What a model is built for: `classify` (output `[numClasses]`) or `mlm` (output `[maxLen, vocabulary]`). */
export type ModelTask = "classify" | "mlm";

/** The dataset facts a model is sized by and checked against. */
export type ModelData = Pick<Dataset, "name" | "inputSize" | "numClasses"> & SizingData;

/**
 * Builds a model from its spec and checks it against the dataset: the product of the model's
 * input dimensions must equal the dataset's values per sample (so a conv model may take MNIST
 * as [28, 28, 1]), and its output must be `[numClasses]` (`task` classify, the default) or
 * `[maxLen, vocabulary]` of the dataset's tokens (`task` mlm). A registered transformer takes
 * `maxLen`, `vocabulary` and `classes` from the dataset (see `transformer/sized.ts`). Throws {@link ModelDataMismatchError}
 * naming both shapes, {@link InvalidModelConfigError} for configs tfjs-layers rejects or that the
 * compute layer does not support (regularizers, constraints, non-trainable weights such as
 * BatchNormalization's moving statistics), {@link UnknownModelError} for an unknown name.
 * A tfjs backend must be active in this thread (call `selectBackend` first; the engine does).
 */
export async function buildModel(
  spec: ModelSpec,
  dataset: ModelData,
  task: ModelTask = "classify",
): Promise<BuiltModel> {
  const config = resolveModelConfig(sizeForDataset(spec, dataset));
  const layers = layerConfigs(config);
  for (const layer of layers) {
    const bad = UNSUPPORTED_KEYS.filter((k) => layer.config?.[k] != null);
    if (bad.length > 0) {
      throw new InvalidModelConfigError(
        `layer ${String(layer.config?.name)}: ${bad.join(", ")} not supported`,
      );
    }
  }
  let model: tfl.LayersModel;
  try {
    // Only the topology is passed: a weightsManifest would make tfjs fetch weight files.
    model = await tfl.models.modelFromJSON({ modelTopology: jsonDict(config, "model") });
  } catch (err) {
    throw new InvalidModelConfigError(`tfjs-layers could not build the model: ${String(err)}`, {
      cause: err,
    });
  }
  const name = typeof spec === "string" ? spec : String(config.config.name ?? "custom");
  try {
    return describe(name, model, layers, dataset, task);
  } catch (err) {
    model.dispose();
    throw err;
  }
}

function describe(
  name: string,
  model: tfl.LayersModel,
  layers: { class_name?: unknown }[],
  dataset: ModelData,
  task: ModelTask,
): BuiltModel {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new InvalidModelConfigError("the model must have exactly one input and one output");
  }
  if (model.nonTrainableWeights.length > 0) {
    const names = model.nonTrainableWeights.map((w) => w.originalName).join(", ");
    throw new InvalidModelConfigError(`non-trainable weights would diverge between replicas: ${names}`);
  }
  const [input] = model.inputs;
  const [output] = model.outputs;
  if (!input || !output)
    throw new InvalidModelConfigError("the model must have exactly one input and one output");
  const inputShape = input.shape.slice(1);
  const outputShape = output.shape.slice(1);
  if (inputShape.some((d) => d === null)) {
    throw new InvalidModelConfigError(`model input shape [${inputShape.join(", ")}] must be fully defined`);
  }
  const problems: string[] = [];
  const inputSize = (inputShape as number[]).reduce((a, b) => a * b, 1);
  if (inputSize !== dataset.inputSize) {
    problems.push(
      `model "${name}" takes input [${inputShape.join(", ")}] (${inputSize} values per sample) ` +
        `but dataset "${dataset.name}" has ${dataset.inputSize} values per sample`,
    );
  }
  const outputProblem = outputMismatch(name, outputShape, dataset, task);
  if (outputProblem) problems.push(outputProblem);
  if (problems.length > 0) throw new ModelDataMismatchError(problems.join("; "));

  let offset = 0;
  const weights = model.trainableWeights.map((w): WeightInfo => {
    const shape = w.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const info = { name: w.originalName, shape, size, offset, init: initFor(w.originalName, shape) };
    offset += size;
    return info;
  });
  return {
    name,
    model,
    inputShape: inputShape as number[],
    outputsProbabilities: endsInSoftmax(model),
    requires: layers.some((l) => CONV_CLASSES.has(String(l.class_name))) ? "conv" : "dense",
    weights,
    paramCount: offset,
  };
}

/** Why a model's output does not fit the task on the dataset, or undefined when it does. */
function outputMismatch(
  name: string,
  outputShape: (number | null)[],
  dataset: ModelData,
  task: ModelTask,
): string | undefined {
  const got = `model "${name}" outputs [${outputShape.join(", ")}]`;
  if (task === "mlm") {
    const t = dataset.tokens;
    if (!t) return `task mlm reads token ids, but dataset "${dataset.name}" has none (give it a tokenizer)`;
    return outputShape.length === 2 && outputShape[0] === t.maxLen && outputShape[1] === t.vocabulary
      ? undefined
      : `${got} but task mlm on dataset "${dataset.name}" needs [${t.maxLen}, ${t.vocabulary}] (maxLen, vocabulary): a text-transformer-mlm`;
  }
  return outputShape.length === 1 && outputShape[0] === dataset.numClasses
    ? undefined
    : `${got} but dataset "${dataset.name}" has ${dataset.numClasses} classes (expected output [${dataset.numClasses}])`;
}

/**
 * Kernels and embeddings (token and position tables of the transformer too) get glorot-uniform,
 * BatchNorm-style gammas ones, everything else zeros.
 */
function initFor(originalName: string, shape: number[]): WeightInit {
  const leaf = originalName.split("/").pop() ?? "";
  if (leaf === "gamma") return "ones";
  if (/kernel$|^embeddings$|^position_embeddings$/.test(leaf) && shape.length >= 1) return "glorot-uniform";
  return "zeros";
}

function endsInSoftmax(model: tfl.LayersModel): boolean {
  const last = model.layers.at(-1);
  if (!last) return false;
  if (last.getClassName() === "Softmax") return true;
  return last.getConfig().activation === "softmax";
}

/** Applies a model in training or inference mode and returns its single output. */
export function applyModel(model: tfl.LayersModel, x: Tensor, training: boolean): Tensor {
  return model.apply(x, { training }) as Tensor;
}

/** A JSON value, as tfjs-layers reads a model topology. */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * The config as plain JSON (a copy; undefined fields dropped), or InvalidModelConfigError naming
 * the first value that is not JSON: a spec arrives from the wire and tfjs trusts what it is given.
 */
function jsonDict(value: unknown, path: string): { [key: string]: Json } {
  const json = toJson(value, path);
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new InvalidModelConfigError(`${path} is not a JSON object`);
  return json;
}

function toJson(value: unknown, path: string): Json {
  if (value === null || typeof value === "boolean" || typeof value === "string" || typeof value === "number")
    return value;
  if (Array.isArray(value)) return value.map((v: unknown, i) => toJson(v, `${path}[${i}]`));
  const proto: unknown = typeof value === "object" ? Object.getPrototypeOf(value) : undefined;
  if (typeof value === "object" && (proto === Object.prototype || proto === null)) {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJson(v, `${path}.${k}`);
    return out;
  }
  throw new InvalidModelConfigError(`${path} holds a value that is not JSON (${typeof value})`);
}
