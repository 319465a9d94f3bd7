/**
 * Errors of the compute layer. One class per failure mode, each with `name` set and `cause`
 * supported, so callers test with `instanceof` and never by matching message text.
 */

/** No candidate backend loaded and passed its self-check for the requested preference. */
export class NoBackendError extends Error {
  override name = "NoBackendError";
  constructor(
    message: string,
    /** Every candidate tried, with the reason it was skipped. */
    readonly skipped: readonly { backend: string; reason: string }[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** `loadDataset` was given a name that is not in the registry. */
export class UnknownDatasetError extends Error {
  override name = "UnknownDatasetError";
  constructor(
    readonly dataset: string,
    readonly known: readonly string[],
  ) {
    super(`unknown dataset "${dataset}"; known datasets: ${known.join(", ")}`);
  }
}

/** A model name that is not in the registry (and was not given as a layers config). */
export class UnknownModelError extends Error {
  override name = "UnknownModelError";
  constructor(
    readonly model: string,
    readonly known: readonly string[],
  ) {
    super(`unknown model "${model}"; known models: ${known.join(", ")}`);
  }
}

/** A layers config that tfjs-layers cannot build, or that the compute layer does not support. */
export class InvalidModelConfigError extends Error {
  override name = "InvalidModelConfigError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The model's input or output shape does not fit the dataset's samples or classes. */
export class ModelDataMismatchError extends Error {
  override name = "ModelDataMismatchError";
  constructor(message: string) {
    super(message);
  }
}

/** A flat parameter vector or gradient whose length does not match the model or the optimizer. */
export class ParamLengthError extends Error {
  override name = "ParamLengthError";
  constructor(
    readonly expected: number,
    readonly actual: number,
    what = "parameter vector",
  ) {
    super(`${what} has ${actual} values, expected ${expected}`);
  }
}

/** A sample index outside the split it was asked of. */
export class SampleIndexError extends Error {
  override name = "SampleIndexError";
  constructor(
    readonly index: number,
    readonly size: number,
    readonly split: "train" | "test",
  ) {
    super(`sample index ${index} is outside the ${split} split of size ${size}`);
  }
}

/** Optimizer state that cannot be imported into this optimizer (other kind, length or shape). */
export class OptimizerStateError extends Error {
  override name = "OptimizerStateError";
  constructor(message: string) {
    super(message);
  }
}

/** A request to a {@link ComputeWorker} that failed inside the worker or because it stopped. */
export class ComputeWorkerError extends Error {
  override name = "ComputeWorkerError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A request to a {@link ComputeWorker} that was closed, or whose thread exited. */
export class WorkerClosedError extends Error {
  override name = "WorkerClosedError";
  constructor(message = "compute worker is closed", options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A dataset file that cannot be used: unreadable, too large, or holding a record that does not
 * fit the spec. The message names the file and, where they apply, the line and the field.
 */
export class BadDataError extends Error {
  override name = "BadDataError";
  constructor(
    readonly file: string,
    readonly problem: string,
    readonly line?: number,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    const where = [line === undefined ? "" : `line ${line}`, field === undefined ? "" : `field "${field}"`]
      .filter(Boolean)
      .join(", ");
    super(`${file}${where ? `: ${where}` : ""}: ${problem}`, options);
  }
}

/**
 * A saved model (`init: "file:///DIR"`, a folder `flock train --out` wrote) that cannot be used:
 * the folder or its `model.json` missing or unreadable, a malformed manifest, weights that are
 * not float32, weight files of the wrong length. The message names the file.
 */
export class SavedModelError extends Error {
  override name = "SavedModelError";
  constructor(
    readonly file: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}`, options);
  }
}

/** A `freeze` list names a layer the model does not have (or that has no trainable weights). */
export class UnknownFrozenLayerError extends Error {
  override name = "UnknownFrozenLayerError";
  constructor(
    readonly layer: string,
    readonly known: readonly string[],
  ) {
    super(`freeze: the model has no layer "${layer}" with weights; its layers: ${known.join(", ")}`);
  }
}
