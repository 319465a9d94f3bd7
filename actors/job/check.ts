import { ComputeEngine } from "../compute/engine.js";
import { knownDatasets } from "../compute/datasets.js";
import { UnknownDatasetError } from "../compute/errors.js";
import type { JobSpec } from "./spec.js";

/**
 * Fails fast, before anything is placed, when the dataset does not exist or the model's tensors do
 * not fit the data: builds the model once against the dataset on the pure-JS backend.
 */
export async function checkJobFits(spec: JobSpec): Promise<void> {
  if (!knownDatasets().includes(spec.dataset)) throw new UnknownDatasetError(spec.dataset, knownDatasets());
  const engine = await ComputeEngine.create({
    model: spec.model,
    dataset: spec.dataset,
    backend: "cpu",
    seed: spec.seed,
  });
  engine.dispose();
}
