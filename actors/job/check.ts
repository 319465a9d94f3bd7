import { ComputeEngine } from "../compute/engine.js";
import { knownDatasets } from "../compute/datasets.js";
import { UnknownDatasetError } from "../compute/errors.js";
import type { JobSpec } from "./spec.js";
import type { StoreProvider } from "../../runtime/store/types.js";
import { CHECKPOINTS_BUCKET } from "./names.js";
import { resolveInit } from "./init-source.js";
import { dataAccess, fetchStoredSources } from "../compute/dataset-store-cache.js";

/**
 * Fails fast, before anything is placed, when the dataset does not exist, a dataset file holds bad
 * data (`BadDataError`, naming the file, line and field) or the model's tensors do not fit the
 * data: loads the dataset and builds the model once against it on the pure-JS backend. With
 * `init`, also reads the saved weights (`job://ID` from `stores`' object store) and checks the
 * `freeze` names against the built model. A `flock://` dataset must be complete in `stores`' datasets
 * bucket: its shards are fetched into this machine's cache and verified by hash.
 */
export async function checkJobFits(spec: JobSpec, stores?: StoreProvider): Promise<void> {
  if (typeof spec.dataset === "string" && !knownDatasets().includes(spec.dataset))
    throw new UnknownDatasetError(spec.dataset, knownDatasets());
  const engine = await ComputeEngine.create({
    model: spec.model,
    dataset: spec.dataset,
    backend: "cpu",
    seed: spec.seed,
    init: await resolveInit(spec.init, stores && (() => stores.blobs(CHECKPOINTS_BUCKET))),
    freeze: spec.freeze,
    keepZeros: spec.keepZeros,
    task: spec.task,
    mlm: spec.mlm,
    stored: await fetchStoredSources(spec.dataset, stores && dataAccess(stores)),
  });
  engine.dispose();
}
