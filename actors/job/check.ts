import { ComputeEngine } from "../compute/engine.js";
import { knownDatasets } from "../compute/datasets.js";
import { UnknownDatasetError } from "../compute/errors.js";
import type { JobSpec } from "./spec.js";

/**
 * Fails fast, before anything is placed, when the dataset does not exist, a dataset file holds bad
 * data (`BadDataError`, naming the file, line and field) or the model's tensors do not fit the
 * data: loads the dataset and builds the model once against it on the pure-JS backend.
 */
export async function checkJobFits(spec: JobSpec): Promise<void> {
  if (typeof spec.dataset === "string" && !knownDatasets().includes(spec.dataset))
    throw new UnknownDatasetError(spec.dataset, knownDatasets());
  const engine = await ComputeEngine.create({
    model: spec.model,
    dataset: spec.dataset,
    backend: "cpu",
    seed: spec.seed,
    init: spec.init,
    freeze: spec.freeze,
  });
  engine.dispose();
}
