/**
 * The compute layer: backend selection, datasets, models, the flat-parameter gradient engine (in
 * process or in a worker thread), pure-JS optimizers, the parameter hash and the plain baseline.
 */
export {
  selectBackend,
  type BackendName,
  type BackendPreference,
  type ModelRequirement,
  type SelectBackendOptions,
  type SelectedBackend,
  type SkippedBackend,
  type Tf,
} from "./backend.js";
export { knownDatasets, loadDataset, type Batch, type Dataset } from "./datasets.js";
export {
  buildModel,
  knownModels,
  modelRequirement,
  resolveModelConfig,
  type BuiltModel,
  type LayersModelConfig,
  type ModelSpec,
  type WeightInfo,
  type WeightInit,
} from "./models.js";
export {
  ComputeEngine,
  type EngineInfo,
  type EngineOptions,
  type EvalResult,
  type GradientResult,
} from "./engine.js";
export { ComputeWorker, type SetParamsOptions } from "./worker.js";
export {
  createOptimizer,
  type AdamSpec,
  type Optimizer,
  type OptimizerSpec,
  type OptimizerState,
  type SgdSpec,
} from "./optimizer.js";
export { paramHash } from "./hash.js";
export { plainTrainLoop, type PlainTrainOptions, type PlainTrainResult } from "./baseline.js";
export { createPrng, seededPermutation, type Prng } from "./prng.js";
export * from "./errors.js";
