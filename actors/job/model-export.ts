import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as tfc from "@tensorflow/tfjs-core";
import { selectBackend } from "../compute/backend.js";
import { datasetName } from "../compute/dataset-spec.js";
import type { Preprocessing } from "../compute/dataset-file.js";
import { loadDataset } from "../compute/datasets.js";
import type { StoredSources } from "../compute/dataset-store-cache.js";
import { buildModel, modelRequirement } from "../compute/models.js";
import type { StoreProvider } from "../../runtime/store/types.js";
import { CHECKPOINTS_BUCKET } from "./names.js";
import { StoredModelError, decodeStoredModel, modelBlobName, type StoredModel } from "./model-store.js";
import type { JobSpec } from "./spec.js";

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
  /** How a raw record becomes an input (datasets from files only). */
  preprocessing?: Preprocessing;
}

/** An exported model: where its files are and what it is. */
export interface ExportedModel {
  dir: string;
  files: string[];
  info: FlockModelInfo;
}

/** The latest scored model of `job` from the cluster's object store; throws {@link StoredModelError}. */
export async function fetchStoredModel(stores: StoreProvider, job: string): Promise<StoredModel> {
  const name = modelBlobName(job);
  const blob = await (await stores.blobs(CHECKPOINTS_BUCKET)).get(name);
  if (!blob) throw new StoredModelError(`no model of job ${job} in the object store (${name})`);
  return decodeStoredModel(blob, name);
}

/**
 * Writes `stored` as a tfjs LayersModel (`model.json` + `weights.bin`, the layout `tf.io` reads:
 * stock tfjs-node loads it with `tf.loadLayersModel("file://DIR/model.json")`) and `flock.json`.
 * Builds the model on the pure-JS backend in this thread, as the submit-time check does.
 */
export async function exportModel(
  spec: JobSpec,
  stored: StoredModel,
  dir: string,
  data?: StoredSources,
): Promise<ExportedModel> {
  await selectBackend("cpu", { requires: modelRequirement(spec.model) });
  const dataset = await loadDataset(spec.dataset, spec.seed, data);
  const built = await buildModel(spec.model, dataset);
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
    if (!artifacts?.weightSpecs || !artifacts.weightData) throw new Error("tfjs saved no weights");
    const data = artifacts.weightData;
    const weights = new Uint8Array(Array.isArray(data) ? tfc.io.concatenateArrayBuffers(data) : data);
    const preprocessing = "preprocessing" in dataset ? (dataset.preprocessing as Preprocessing) : undefined;
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
      classes: preprocessing?.classes ?? Array.from({ length: dataset.numClasses }, (_, i) => i),
      ...(preprocessing ? { preprocessing } : {}),
    };
    mkdirSync(dir, { recursive: true });
    const modelJson = {
      format: "layers-model",
      generatedBy: `flock (tfjs-layers ${tfc.version_core})`,
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs }],
    };
    writeFileSync(join(dir, "weights.bin"), weights);
    writeFileSync(join(dir, "model.json"), JSON.stringify(modelJson));
    writeFileSync(join(dir, "flock.json"), JSON.stringify(info, null, 2) + "\n");
    return { dir, files: ["model.json", "weights.bin", "flock.json"].map((f) => join(dir, f)), info };
  } finally {
    built.model.dispose();
  }
}
