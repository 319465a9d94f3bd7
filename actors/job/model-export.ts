import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as tfc from "@tensorflow/tfjs-core";
import { selectBackend } from "../compute/backend.js";
import { datasetName, type DatasetSpec } from "../compute/dataset-spec.js";
import type { FileDataset, Preprocessing } from "../compute/dataset-file.js";
import type { ImageDataset, ImagePreprocessing } from "../compute/dataset-images.js";
import { loadDataset, type Dataset } from "../compute/datasets.js";
import type { StoredSources } from "../compute/dataset-store-cache.js";
import { buildModel, modelRequirement } from "../compute/models.js";
import { quantizeWeights, type QuantizeDtype, type WeightSpec } from "../compute/quantize.js";
import { readSavedWeights } from "../compute/saved-model.js";
import { SavedModelError } from "../compute/errors.js";
import type { StoreProvider } from "../../runtime/store/types.js";
import { CHECKPOINTS_BUCKET, JOB_STATE_BUCKET } from "./names.js";
import { decodeJob } from "../coordinator/codec.js";
import { DEFAULT_MASK_RATE } from "./task-spec.js";
import { StoredModelError, decodeStoredModel, modelBlobName, type StoredModel } from "./model-store.js";
import type { JobSpec } from "./spec.js";
import type { TokenizerJson } from "../compute/tokenizer.js";

/** What `flock.json` holds next to an exported model: enough to feed it and to read its output. */
export interface FlockModelInfo {
  flock: 1;
  job: string;
  name: string;
  step: number;
  accuracy: number;
  loss: number;
  dataset: string;
  /** `logits` (apply softmax for probabilities) or `probabilities` (the model ends in softmax). */
  output: "logits" | "probabilities";
  inputShape: number[];
  /** Class names in output order (a built-in dataset's classes are its indices). */
  classes: (string | number)[];
  /** How a raw record becomes an input (CSV / JSONL datasets only). */
  preprocessing?: Preprocessing;
  /** How an image becomes an input (`images` datasets only): classes, size, channels, scaling. */
  images?: ImagePreprocessing;
  /** How the weights are stored when not float32 (`flock train --quantize`, `flock export`). */
  quantization?: QuantizeDtype;
  /** What the model was trained for (absent in older files: classify). An mlm model predicts tokens. */
  task?: "classify" | "mlm";
  /**
   * A token-id dataset's tokenizer and ids per sample: what encodes a record's text for this model,
   * and what a dataset's `tokenizer: "file:///DIR"` reads to fine-tune with the same vocabulary.
   */
  tokenizer?: TokenizerJson;
  maxLen?: number;
  /**
   * An mlm model's masking (the job's seed and rate): what fixes the positions its evaluation
   * scored, so `flock export` scores a compressed copy on exactly those positions.
   */
  mlm?: { seed: number; rate: number };
}

/** A model in the tfjs LayersModel format, in memory: its topology and its weights' manifest and bytes. */
export interface ModelFiles {
  modelTopology: object;
  weightSpecs: WeightSpec[];
  weightData: Uint8Array;
}

/** An exported model: where its files are, what it is, and the bytes of its files. */
export interface ExportedModel {
  dir: string;
  files: string[];
  info: FlockModelInfo;
  /** Bytes of `weights.bin` and of `model.json` + `weights.bin`. */
  bytes: { weights: number; total: number };
}

/** Options of {@link exportModel}. */
export interface ExportOptions {
  /** Store the weights quantised (tfjs `quantization` in the manifest), loadable by stock tfjs. */
  quantize?: QuantizeDtype;
  /** The shards of a `flock://` dataset, fetched into the node's cache (`fetchStoredSources`). */
  data?: StoredSources;
}

/**
 * The spec job `job` was placed with, from its record in the cluster's job-state bucket: with
 * what the submitter added (a streamed dataset's profile, the file hashes), so a model is read
 * and described as its job trained it. Throws when there is no record.
 */
export async function fetchJobSpec(stores: StoreProvider, job: string): Promise<JobSpec> {
  const entry = await (await stores.kv(JOB_STATE_BUCKET)).get(job);
  if (!entry) throw new Error(`no job ${job} in the cluster's job records (${JOB_STATE_BUCKET})`);
  return decodeJob(entry.value).spec;
}

/** The latest scored model of `job` from the cluster's object store; throws {@link StoredModelError}. */
export async function fetchStoredModel(stores: StoreProvider, job: string): Promise<StoredModel> {
  const name = modelBlobName(job);
  const blob = await (await stores.blobs(CHECKPOINTS_BUCKET)).get(name);
  if (!blob) throw new StoredModelError(`no model of job ${job} in the object store (${name})`);
  return decodeStoredModel(blob, name);
}

/**
 * `stored` as float32 tfjs LayersModel files in memory, its `flock.json` and the job's dataset.
 * Builds the model on the pure-JS backend in this thread, as the submit-time check does.
 */
export async function storedModelFiles(
  spec: JobSpec,
  stored: StoredModel,
  data?: StoredSources,
): Promise<{ files: ModelFiles; info: FlockModelInfo; dataset: Dataset }> {
  await selectBackend("cpu", { requires: modelRequirement(spec.model) });
  const dataset = await loadDataset(spec.dataset, spec.seed, data);
  const built = await buildModel(spec.model, dataset, spec.task);
  try {
    if (stored.params.length !== built.paramCount)
      throw new StoredModelError(
        `stored model has ${stored.params.length} parameters, the model ${built.paramCount}`,
      );
    built.model.setWeights(
      built.weights.map((w) => tfc.tensor(stored.params.slice(w.offset, w.offset + w.size), w.shape)),
    );
    let artifacts: tfc.io.ModelArtifacts | undefined;
    await built.model.save(
      tfc.io.withSaveHandler((a) => {
        artifacts = a;
        return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } });
      }),
    );
    if (!artifacts?.weightSpecs || !artifacts.weightData || !artifacts.modelTopology)
      throw new Error("tfjs saved no weights");
    const data = artifacts.weightData;
    const weightData = new Uint8Array(Array.isArray(data) ? tfc.io.concatenateArrayBuffers(data) : data);
    const recorded = recordedPreprocessing(dataset);
    const info: FlockModelInfo = {
      flock: 1,
      job: stored.job,
      name: spec.name,
      step: stored.step,
      accuracy: stored.accuracy,
      loss: stored.loss,
      dataset: datasetName(spec.dataset),
      output: built.outputsProbabilities ? "probabilities" : "logits",
      inputShape: built.inputShape,
      classes:
        (recorded.preprocessing ?? recorded.images)?.classes ??
        Array.from({ length: dataset.numClasses }, (_, i) => i),
      ...recorded,
      task: spec.task,
      ...(spec.task === "mlm" ? { mlm: { seed: spec.seed, rate: spec.mlm?.rate ?? DEFAULT_MASK_RATE } } : {}),
      ...(dataset.tokens ? { tokenizer: dataset.tokens.tokenizer, maxLen: dataset.tokens.maxLen } : {}),
    };
    return {
      files: { modelTopology: artifacts.modelTopology, weightSpecs: artifacts.weightSpecs, weightData },
      info,
      dataset,
    };
  } finally {
    built.model.dispose();
  }
}

/** What a dataset from files records of its preprocessing, under `flock.json`'s key for its kind. */
function recordedPreprocessing(dataset: Dataset): Pick<FlockModelInfo, "preprocessing" | "images"> {
  if (!("preprocessing" in dataset)) return {};
  const p = (dataset as FileDataset | ImageDataset).preprocessing;
  return p.format === "images" ? { images: p } : { preprocessing: p };
}

/** `files` with every float32 weight quantised to `dtype` (the topology is shared, not copied). */
export function quantizeModelFiles(files: ModelFiles, dtype: QuantizeDtype): ModelFiles {
  const q = quantizeWeights(files.weightSpecs, files.weightData, dtype);
  return { modelTopology: files.modelTopology, weightSpecs: q.specs, weightData: q.data };
}

/** The text of `model.json` for `files`, its weights in `weights.bin`. */
export function modelJsonText(files: ModelFiles): string {
  return JSON.stringify({
    format: "layers-model",
    generatedBy: `flock (tfjs-layers ${tfc.version_core})`,
    convertedBy: null,
    modelTopology: files.modelTopology,
    weightsManifest: [{ paths: ["weights.bin"], weights: files.weightSpecs }],
  });
}

/**
 * Writes `model.json` + `weights.bin` (the layout `tf.io` reads: stock tfjs-node loads it with
 * `tf.loadLayersModel("file://DIR/model.json")`) and `flock.json` into `dir`.
 */
export function writeModelFiles(dir: string, files: ModelFiles, info: FlockModelInfo): ExportedModel {
  mkdirSync(dir, { recursive: true });
  const modelJson = modelJsonText(files);
  writeFileSync(join(dir, "weights.bin"), files.weightData);
  writeFileSync(join(dir, "model.json"), modelJson);
  writeFileSync(join(dir, "flock.json"), JSON.stringify(info, null, 2) + "\n");
  const weights = files.weightData.length;
  return {
    dir,
    files: ["model.json", "weights.bin", "flock.json"].map((f) => join(dir, f)),
    info,
    bytes: { weights, total: weights + Buffer.byteLength(modelJson) },
  };
}

/** Writes `stored` as a tfjs LayersModel and `flock.json` into `dir`, quantised when `opts.quantize` says. */
export async function exportModel(
  spec: JobSpec,
  stored: StoredModel,
  dir: string,
  opts: ExportOptions = {},
): Promise<ExportedModel> {
  const { files, info } = await storedModelFiles(spec, stored, opts.data);
  if (!opts.quantize) return writeModelFiles(dir, files, info);
  return writeModelFiles(dir, quantizeModelFiles(files, opts.quantize), {
    ...info,
    quantization: opts.quantize,
  });
}

/**
 * The float32 model a folder written by `flock train --out` holds; throws {@link SavedModelError}
 * naming the file for a missing or malformed `model.json`, weights or `flock.json`, or weights
 * already quantised.
 */
export function readModelDir(dir: string): { files: ModelFiles; info: FlockModelInfo } {
  const weights = readSavedWeights(pathToFileURL(dir).href);
  const read = (name: string): unknown => {
    try {
      return JSON.parse(readFileSync(join(dir, name), "utf8"));
    } catch (error) {
      throw new SavedModelError(join(dir, name), `cannot be read as JSON: ${(error as Error).message}`);
    }
  };
  const modelJson = read("model.json") as { modelTopology?: unknown };
  if (typeof modelJson.modelTopology !== "object" || modelJson.modelTopology === null)
    throw new SavedModelError(join(dir, "model.json"), "has no modelTopology");
  const info = read("flock.json") as Partial<FlockModelInfo> | null;
  if (info?.flock !== 1 || !Array.isArray(info.classes))
    throw new SavedModelError(
      join(dir, "flock.json"),
      "is not a flock model description (flock: 1, classes)",
    );
  const weightData = new Uint8Array(weights.reduce((n, w) => n + w.values.byteLength, 0));
  let at = 0;
  for (const w of weights) {
    weightData.set(new Uint8Array(w.values.buffer, w.values.byteOffset, w.values.byteLength), at);
    at += w.values.byteLength;
  }
  const weightSpecs = weights.map((w): WeightSpec => ({
    name: w.name,
    shape: [...w.shape],
    dtype: "float32",
  }));
  return {
    files: { modelTopology: modelJson.modelTopology, weightSpecs, weightData },
    info: info as FlockModelInfo,
  };
}

/**
 * The dataset (and job seed) whose test split a model was scored on, from its `flock.json`: a
 * built-in by name, or a file dataset rebuilt from the preprocessing it records (the same files
 * and seed give the same split; {@link testDatasetOf}'s caller checks the files' digests).
 */
export function datasetOfInfo(info: FlockModelInfo): { dataset: DatasetSpec; seed: number } {
  const p = info.images ?? info.preprocessing;
  if (!p) return { dataset: info.dataset, seed: 0 };
  const test =
    p.test.fraction !== undefined ? { fraction: p.test.fraction } : pathToFileURL(p.test.source).href;
  const seed = p.test.seed ?? 0;
  if (p.format === "images")
    return {
      dataset: { source: p.train.source, format: "images", size: p.size, channels: p.channels, test },
      seed,
    };
  return {
    dataset: {
      source: p.train.source,
      format: p.format,
      ...(p.label === undefined ? {} : { label: p.label }),
      ...(p.tokens
        ? { text: p.tokens.field, tokenizer: p.tokens.from }
        : { features: p.features.map((f) => f.name) }),
      ...(p.text ? { text: p.text.field, vocabSize: p.text.vocabSize } : {}),
      test,
    },
    seed,
  };
}

/** The test split a model was scored on, loaded; throws when the files changed since (digests differ). */
export async function testDatasetOf(info: FlockModelInfo): Promise<Dataset> {
  const { dataset, seed } = datasetOfInfo(info);
  const loaded = await loadDataset(dataset, seed);
  const recorded = recordedPreprocessing(loaded);
  const now = recorded.images ?? recorded.preprocessing;
  const was = info.images ?? info.preprocessing;
  if (was && now && (was.train.sha256 !== now.train.sha256 || was.test.sha256 !== now.test.sha256))
    throw new SavedModelError(
      was.train.source,
      "the training or test data changed since the model was trained (sha256 differs): its test split is gone",
    );
  return loaded;
}
