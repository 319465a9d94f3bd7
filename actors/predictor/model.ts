/**
 * A model to predict with: the files `flock train --out` writes (`model.json`, its weight files,
 * `flock.json`) read into one {@link ModelBundle} — what travels to the predictors — and a bundle
 * opened as a tfjs LayersModel that turns input rows into class probabilities.
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import { isAbsolute, join, normalize, resolve, sep } from "node:path";
import * as tfc from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { z } from "zod";
import { selectBackend } from "../compute/backend.js";
import type { Preprocessing } from "../compute/dataset-file.js";
import { TokenizerSpec } from "../compute/dataset-spec.js";
import { SavedModelError } from "../compute/errors.js";
import { TokenizerJson } from "../compute/tokenizer.js";

/** Largest `model.json` and `flock.json` read (a vocabulary of 100 000 tokens fits). */
export const MODEL_JSON_BYTES = 16 << 20;
/** Largest weights read: the job spec's bound on a model (16 M float32 parameters). */
export const MODEL_WEIGHT_BYTES = 64 << 20;

const FeatureStat = z.strictObject({
  name: z.string().max(256),
  mean: z.number(),
  std: z.number().positive(),
});
const Split = z.object({ source: z.string(), sha256: z.string(), records: z.number() }).passthrough();

/** The preprocessing `flock.json` records (see `Preprocessing`), checked: the file is the user's. */
export const PreprocessingSchema = z.strictObject({
  format: z.enum(["csv", "jsonl"]),
  label: z.string().max(256),
  classes: z
    .array(z.union([z.string().max(1024), z.number()]))
    .min(2)
    .max(100_000),
  features: z.array(FeatureStat).max(100_000),
  text: z
    .strictObject({
      field: z.string().max(256),
      tokenPattern: z.string().max(256),
      lowercase: z.literal(true),
      vocabSize: z.number().int().min(0).max(1_000_000),
      vocabulary: z.array(z.string().max(64)).max(1_000_000),
      idf: z.array(z.number()).max(1_000_000),
    })
    .optional(),
  tokens: z
    .strictObject({
      field: z.string().max(256),
      maxLen: z
        .number()
        .int()
        .min(2)
        .max(1 << 16),
      vocabulary: z
        .number()
        .int()
        .min(1)
        .max(1 << 20),
      from: TokenizerSpec,
    })
    .optional(),
  inputSize: z.number().int().min(1).max(10_000_000),
  train: Split,
  test: Split,
});

/** The part of `flock.json` prediction needs. */
export const PredictInfo = z
  .object({
    flock: z.literal(1),
    job: z.string().max(256),
    accuracy: z.number(),
    output: z.enum(["logits", "probabilities"]),
    classes: z.array(z.union([z.string(), z.number()])).max(100_000),
    preprocessing: PreprocessingSchema.optional(),
    task: z.enum(["classify", "mlm"]).optional(),
    tokenizer: TokenizerJson.optional(),
    maxLen: z
      .number()
      .int()
      .min(2)
      .max(1 << 16)
      .optional(),
  })
  .passthrough();
/** The part of `flock.json` prediction needs. */
export type PredictInfo = z.infer<typeof PredictInfo>;

/** A model as it travels: `model.json`'s topology and weight specs (JSON text), the weights, `flock.json`. */
export interface ModelBundle {
  topology: string;
  weightSpecs: string;
  weights: Uint8Array;
  info: string;
}

/** A model opened for prediction. */
export interface OpenModel {
  info: PredictInfo;
  preprocessing: Preprocessing;
  /** Class probabilities of `n` input rows (row-major), `n × classes`. */
  predict(inputs: Float32Array, n: number): Float32Array;
  dispose(): void;
}

function readBounded(file: string, limit: number): Buffer {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new SavedModelError(file, "is not a regular file");
    size = stat.size;
  } catch (error) {
    if (error instanceof SavedModelError) throw error;
    throw new SavedModelError(file, `cannot be read (${(error as Error).message})`, { cause: error });
  }
  if (size > limit) throw new SavedModelError(file, `is ${size} bytes, more than ${limit}`);
  return readFileSync(file);
}

/** Parses JSON text of a file we did not write; throws {@link SavedModelError} naming it. */
function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SavedModelError(file, `is not JSON: ${(error as Error).message}`);
  }
}

const ModelJson = z.object({
  modelTopology: z.record(z.string(), z.unknown()),
  weightsManifest: z
    .array(
      z.object({
        paths: z.array(z.string().max(1024)).max(1024),
        weights: z.array(z.unknown()).max(100_000),
      }),
    )
    .max(1024),
});

/**
 * Reads the model `flock train --out` wrote to `dir`; throws {@link SavedModelError} naming the
 * file for a missing folder or file, malformed JSON, a weight file outside the folder, or a model
 * trained on a built-in dataset (no `preprocessing`: records cannot be read for it).
 */
export function readModelDir(dirArg: string): ModelBundle {
  const dir = resolve(dirArg.startsWith("file://") ? new URL(dirArg).pathname : dirArg);
  try {
    if (!statSync(dir).isDirectory())
      throw new SavedModelError(dir, "is not a folder (give the folder `flock train --out` wrote)");
  } catch (error) {
    if (error instanceof SavedModelError) throw error;
    throw new SavedModelError(
      dir,
      "no such model folder (give the folder `flock train --out` wrote, or job://ID)",
    );
  }
  const modelFile = join(dir, "model.json");
  const parsed = ModelJson.safeParse(
    parseJson(modelFile, readBounded(modelFile, MODEL_JSON_BYTES).toString("utf8")),
  );
  if (!parsed.success)
    throw new SavedModelError(modelFile, `is not a tfjs LayersModel: ${z.prettifyError(parsed.error)}`);
  const infoFile = join(dir, "flock.json");
  const info = readBounded(infoFile, MODEL_JSON_BYTES).toString("utf8");
  checkInfo(infoFile, info);
  let total = 0;
  const parts = parsed.data.weightsManifest.flatMap((g) =>
    g.paths.map((p) => {
      const file = normalize(join(dir, p));
      if (isAbsolute(p) || !file.startsWith(normalize(dir + sep)))
        throw new SavedModelError(modelFile, `weight file "${p}" is outside the model's folder`);
      const bytes = readBounded(file, MODEL_WEIGHT_BYTES - total);
      total += bytes.length;
      return bytes;
    }),
  );
  return {
    topology: JSON.stringify(parsed.data.modelTopology),
    weightSpecs: JSON.stringify(parsed.data.weightsManifest.flatMap((g) => g.weights)),
    weights: Buffer.concat(parts),
    info,
  };
}

/** The checked `flock.json` of a model that records can be predicted with; throws {@link SavedModelError}. */
export function checkInfo(file: string, text: string): PredictInfo & { preprocessing: Preprocessing } {
  const json = parseJson(file, text);
  if (typeof json === "object" && json !== null && "task" in json && json.task === "mlm")
    throw new SavedModelError(
      file,
      'describes a masked language model (task "mlm"): it predicts tokens, not classes; fine-tune a classifier from it (init: file:///DIR, dataset tokenizer: "file:///DIR") and predict with that',
    );
  const parsed = PredictInfo.safeParse(json);
  if (!parsed.success)
    throw new SavedModelError(file, `is not a flock model description: ${z.prettifyError(parsed.error)}`);
  const info = parsed.data;
  if (!info.preprocessing)
    throw new SavedModelError(
      file,
      "describes a model of a built-in dataset: flock predict reads records of a model trained on CSV or JSONL files",
    );
  const p = info.preprocessing;
  if (
    p.features.length + (p.text?.vocabSize ?? 0) + (p.tokens?.maxLen ?? 0) !== p.inputSize ||
    (p.text && p.text.idf.length !== p.text.vocabulary.length)
  )
    throw new SavedModelError(file, "its preprocessing does not add up to its input size");
  if (
    p.tokens &&
    (info.tokenizer?.vocab.length !== p.tokens.vocabulary || info.maxLen !== p.tokens.maxLen || p.text)
  )
    throw new SavedModelError(
      file,
      "its tokens need a tokenizer of their vocabulary and maxLen (and no bag of words)",
    );
  return { ...info, preprocessing: p };
}

/**
 * Opens a bundle on the `cpu` backend selection of `compute/backend.ts` (tfjs-node when
 * installed, else pure JS): the same choice in the client and on every node, so local and
 * distributed predictions are the same bits. Throws {@link SavedModelError} on a bad bundle.
 */
export async function openModel(bundle: ModelBundle, name = "model"): Promise<OpenModel> {
  const info = checkInfo(`${name}/flock.json`, bundle.info);
  await selectBackend("cpu");
  let model: tfl.LayersModel;
  try {
    const w = bundle.weights;
    model = await tfl.loadLayersModel(
      tfc.io.fromMemory({
        modelTopology: JSON.parse(bundle.topology) as object,
        weightSpecs: JSON.parse(bundle.weightSpecs) as tfc.io.WeightsManifestEntry[],
        weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer,
      }),
    );
  } catch (error) {
    throw new SavedModelError(`${name}/model.json`, `tfjs cannot load it: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const width = info.preprocessing.inputSize;
  const classes = info.classes.length;
  return {
    info,
    preprocessing: info.preprocessing,
    predict: (inputs, n) =>
      tfc.tidy(() => {
        const out = model.predict(tfc.tensor2d(inputs, [n, width])) as tfc.Tensor;
        const probs = info.output === "logits" ? tfc.softmax(out) : out;
        if (probs.shape[1] !== classes)
          throw new SavedModelError(
            `${name}/model.json`,
            `outputs ${probs.shape[1]} values, flock.json names ${classes} classes`,
          );
        return Float32Array.from(probs.dataSync());
      }),
    dispose: () => model.dispose(),
  };
}
