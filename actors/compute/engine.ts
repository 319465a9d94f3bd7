import type * as tfc from "@tensorflow/tfjs-core";
import {
  ensureActive,
  selectBackend,
  type BackendName,
  type BackendPreference,
  type ModelRequirement,
  type SkippedBackend,
  type Tf,
} from "./backend.js";
import type { Dataset } from "./dataset-core.js";
import { loadDataset } from "./datasets.js";
import type { DatasetSpec } from "./dataset-spec.js";
import type { StoredSources } from "./dataset-store-cache.js";
import { ParamLengthError } from "./errors.js";
import {
  applyModel,
  buildModel,
  modelRequirement,
  type BuiltModel,
  type ModelSpec,
  type ModelTask,
} from "./models.js";
import { mlmEvaluate, mlmTask, mlmTrainLoss, type MlmTask } from "./engine-mlm.js";
import type { Batch } from "./dataset-core.js";
import { initialParams } from "./init.js";
import {
  frozenRanges,
  initFromSaved,
  savedZeroIndices,
  zeroAt,
  zeroFrozen,
  type InitReport,
  type ParamRange,
  type SavedWeight,
} from "./fine-tune.js";
import { readSavedWeights } from "./saved-model.js";
import { InnerOptimizer, innerBatches, pseudoGradient } from "./local-steps.js";
import type { OptimizerSpec } from "./optimizer.js";

/** What a {@link ComputeEngine} computes with. */
export interface EngineOptions {
  /** A built-in model name or a layers config (see `ModelSpec`). */
  model: ModelSpec;
  /** A dataset name (see `knownDatasets`) or a dataset from files. */
  dataset: DatasetSpec;
  /** Default `auto`. */
  backend?: BackendPreference;
  /** Seed of the initial parameters (and of a file dataset's `{ fraction }` split); default 0. */
  seed?: number;
  /**
   * Saved weights to start from (fine-tuning): a `file://` URL of a folder `flock train --out`
   * wrote, or the weights themselves. Layers matched by name and shape take them in `initParams`.
   */
  init?: string | readonly SavedWeight[];
  /** Layers whose parameters never change: their gradient entries are always zero. */
  freeze?: readonly string[];
  /**
   * With `init`: the kernel values that are exactly 0 in the saved weights (a pruned model) stay
   * exactly 0; their gradient entries are always zero. Refused without `init`.
   */
  keepZeros?: boolean;
  /**
   * `classify` (default) or `mlm`: masked-LM training on a token-id dataset with a model whose
   * output is `[maxLen, vocabulary]` (see `engine-mlm.ts`).
   */
  task?: ModelTask;
  /** Options of `task: "mlm"`: the masking rate (default 0.15). */
  mlm?: { rate: number };
  /** The stored (`flock://`) datasets the spec reads, fetched into the node's cache (`fetchStoredSources`). */
  stored?: StoredSources;
}

/** What an engine runs on; reported in status, metrics and job results. */
export interface EngineInfo {
  model: string;
  dataset: string;
  backend: BackendName;
  device: string;
  skipped: SkippedBackend[];
  requires: ModelRequirement;
  paramCount: number;
  trainSize: number;
  testSize: number;
  inputSize: number;
  numClasses: number;
  /** Time the dataset's first load took in this process or thread (later engines share it). */
  datasetLoadMs: number;
  /** The trainable weights in flat order (names `layer/weight`): what a stored model needs to be read by name. */
  weights: { name: string; shape: number[] }[];
  /** Which layers took saved weights and which kept the seeded ones (only with `init`). */
  init?: InitReport;
}

/** The gradient of a batch: sums over its samples, so contributions can be added and divided once. */
export interface GradientResult {
  /** Sum over the batch of the per-sample loss gradients (= mean gradient × n), flat. */
  grad: Float32Array;
  /** Sum over the batch of the per-sample losses. */
  lossSum: number;
  n: number;
}

/** Scores on (part of) the test split. */
export interface EvalResult {
  /** Mean softmax cross-entropy (task mlm: over the masked positions). */
  loss: number;
  /** Accuracy (task mlm: masked-token accuracy). */
  accuracy: number;
  /** Samples (rows) scored. */
  n: number;
  /** Task mlm: exp(loss). */
  perplexity?: number;
  /** Task mlm: the masked positions scored. */
  maskedTokens?: number;
}

/** Test samples per forward pass in `evaluate`, to bound memory. */
const EVAL_CHUNK = 1000;

/**
 * A model, a dataset and a backend, behind flat Float32Array parameters: the unit a trainer,
 * evaluator or benchmark computes with. Calls are synchronous and may take long; run it in a
 * `ComputeWorker` to keep an event loop free. Every call releases its tensors (`tf.tidy`).
 */
export class ComputeEngine {
  private disposed = false;
  /** The inner optimizer of local steps, made on first use (its spec is the job's, fixed per engine). */
  private inner: { key: string; opt: InnerOptimizer } | undefined;

  private constructor(
    private readonly tf: Tf,
    private readonly tfBackend: string,
    private readonly built: BuiltModel,
    private readonly dataset: Dataset,
    private readonly variables: tfc.Variable[],
    /** Backend, model and dataset facts. */
    readonly info: EngineInfo,
    private readonly seed: number,
    private readonly saved: readonly SavedWeight[] | undefined,
    private readonly frozen: readonly ParamRange[],
    /** Flat indices `keepZeros` pins at 0 (empty without it). */
    private readonly zeros: Uint32Array,
    /** Set for `task: "mlm"`. */
    private readonly mlm: MlmTask | undefined,
  ) {}

  /** Loads the dataset, selects the backend, builds the model and sets `initParams(seed)`. */
  static async create(options: EngineOptions): Promise<ComputeEngine> {
    const requires = modelRequirement(options.model);
    const dataset = await loadDataset(options.dataset, options.seed ?? 0, options.stored);
    const backend = await selectBackend(options.backend ?? "auto", { requires });
    const task = options.task ?? "classify";
    const built = await buildModel(options.model, dataset, task);
    // A LayerVariable's read() hands out its underlying tf.Variable (not a copy).
    const variables = built.model.trainableWeights.map((w) => w.read() as tfc.Variable);
    const info: EngineInfo = {
      model: built.name,
      dataset: dataset.name,
      backend: backend.name,
      device: backend.device,
      skipped: backend.skipped,
      requires,
      paramCount: built.paramCount,
      trainSize: dataset.trainSize,
      testSize: dataset.testSize,
      inputSize: dataset.inputSize,
      numClasses: dataset.numClasses,
      datasetLoadMs: dataset.loadMs,
      weights: built.weights.map((w) => ({ name: w.name, shape: w.shape })),
    };
    const seed = options.seed ?? 0;
    let saved: readonly SavedWeight[] | undefined;
    let frozen: ParamRange[];
    let zeros: Uint32Array = new Uint32Array(0);
    let mlm: MlmTask | undefined;
    try {
      if (task === "mlm") mlm = mlmTask(dataset, seed, options.mlm?.rate ?? 0.15);
      saved = typeof options.init === "string" ? readSavedWeights(options.init) : options.init;
      frozen = frozenRanges(built.weights, options.freeze ?? []);
      if (options.keepZeros && !saved)
        throw new Error("keepZeros keeps the zeros of saved weights: give init");
      if (saved) {
        // From the saved values alone (seed-independent): only taken layers hold them.
        const { params, report } = initFromSaved(built.weights, new Float32Array(built.paramCount), saved);
        info.init = report;
        if (options.keepZeros) zeros = savedZeroIndices(built.weights, params, report.taken);
      }
    } catch (error) {
      built.model.dispose();
      throw error;
    }
    const engine = new ComputeEngine(
      backend.tf,
      backend.tfBackend,
      built,
      dataset,
      variables,
      info,
      seed,
      saved,
      frozen,
      zeros,
      mlm,
    );
    engine.setParams(engine.initParams(seed));
    return engine;
  }

  /** Number of trainable parameters (the length of every flat vector). */
  get paramCount(): number {
    return this.built.paramCount;
  }

  /**
   * Deterministic initial parameters for `seed` (default: the engine's seed): glorot-uniform
   * kernels from a mulberry32 stream, zero biases; with `init`, the layers that match a saved
   * layer by name and shape take its values instead (see `fine-tune.ts`). Does not change the
   * engine's parameters.
   */
  initParams(seed: number = this.seed): Float32Array {
    const seeded = initialParams(this.built.weights, this.built.paramCount, seed);
    return this.saved ? initFromSaved(this.built.weights, seeded, this.saved).params : seeded;
  }

  /** Replaces the model's parameters with a copy of `flat`; throws {@link ParamLengthError}. */
  setParams(flat: Float32Array): void {
    this.check(flat.length);
    const { tf } = this;
    tf.tidy(() => {
      this.built.weights.forEach((w, i) => {
        const variable = this.variables[i];
        if (!variable) throw new Error(`engine: no variable for weight ${i}`);
        // slice(): the cpu backend keeps a reference to a tensor's array, and callers mutate
        // their parameter vectors in place (optimizers).
        variable.assign(tf.tensor(flat.slice(w.offset, w.offset + w.size), w.shape));
      });
    });
  }

  /** A copy of the current parameters, flat. */
  getParams(): Float32Array {
    this.check(this.paramCount);
    let flat: Float32Array = new Float32Array(0);
    // Results leave tf.tidy through the closure: tidy walks a returned object's every property,
    // which for a 100k-value Float32Array costs ~40 ms.
    this.tf.tidy(() => {
      flat = this.flatten(this.variables);
    });
    return flat;
  }

  /**
   * Sums of per-sample gradients and losses over the given training samples. `step` (the committed
   * step computed for) chooses the masks of `task: "mlm"` (see `engine-mlm.ts`: a sample's loss is
   * its row's mean over its masked tokens); a classifier ignores it.
   */
  gradients(indices: readonly number[], step = 0): GradientResult {
    this.check(this.paramCount);
    if (indices.length === 0) return { grad: new Float32Array(this.paramCount), lossSum: 0, n: 0 };
    const batch = this.dataset.trainBatch(indices);
    const { tf } = this;
    const result: GradientResult = { grad: new Float32Array(0), lossSum: 0, n: batch.n };
    tf.tidy(() => {
      const loss = this.mlm
        ? mlmTrainLoss(tf, this.built.model, batch, this.mlm, step)
        : this.classifyLoss(batch);
      const { value, grads } = tf.variableGrads(loss, this.variables);
      result.grad = this.flatten(this.variables.map((v) => grads[v.name]));
      // Zero at the source: the reducers' optimizers (sgd, momentum, adam) then move these by 0.
      zeroFrozen(result.grad, this.frozen);
      zeroAt(result.grad, this.zeros);
      result.lossSum = value.dataSync()[0] ?? NaN;
    });
    return result;
  }

  /**
   * One round of local steps: `steps` optimizer steps of `optimizer` on consecutive mini-batches of
   * `indices`, from the current parameters. Returns the round's pseudo-gradient (`(start − end) · n`,
   * see `local-steps.ts`) and loss sum, and leaves the parameters as they started, so the engine
   * still holds the version it was given. `round` (the step number) lets a redo rewind the inner
   * optimizer; inner step i of round r masks (`task: "mlm"`) for step `r · steps + i`, so every
   * inner batch of every round has its own masks and a redo of the round repeats them.
   */
  localSteps(
    indices: readonly number[],
    steps: number,
    optimizer: OptimizerSpec,
    round: number,
  ): GradientResult {
    this.check(this.paramCount);
    if (indices.length === 0) return { grad: new Float32Array(this.paramCount), lossSum: 0, n: 0 };
    // By value: the spec reaches the worker thread as a fresh copy on every call.
    const key = JSON.stringify(optimizer);
    if (this.inner?.key !== key) this.inner = { key, opt: new InnerOptimizer(optimizer) };
    const inner = this.inner.opt.forRound(round);
    const start = this.getParams();
    const params = start.slice();
    let lossSum = 0;
    innerBatches(indices, steps).forEach((batch, i) => {
      if (i > 0) this.setParams(params);
      const g = this.gradients(batch, round * steps + i);
      lossSum += g.lossSum;
      inner.step(params, g.grad, 1 / g.n);
    });
    this.setParams(start);
    return { grad: pseudoGradient(start, params, indices.length), lossSum, n: indices.length };
  }

  /** Mean loss and accuracy over the given test samples (all of them by default). */
  evaluate(indices?: readonly number[]): EvalResult {
    this.check(this.paramCount);
    const all = indices ?? Array.from({ length: this.dataset.testSize }, (_, i) => i);
    if (this.mlm) return mlmEvaluate(this.tf, this.built.model, this.dataset, all, this.mlm);
    let lossSum = 0;
    let correct = 0;
    const { tf } = this;
    for (let start = 0; start < all.length; start += EVAL_CHUNK) {
      const batch = this.dataset.testBatch(all.slice(start, start + EVAL_CHUNK));
      const [loss, hits] = tf.tidy(() => {
        const x = tf.tensor(batch.x, [batch.n, ...this.built.inputShape]);
        const y = tf.tensor1d(batch.y, "int32");
        const out = applyModel(this.built.model, x, false);
        const lossT = this.lossSum(out, tf.oneHot(y, this.dataset.numClasses));
        const hitsT = tf.sum(tf.cast(tf.equal(tf.argMax(out, 1), y), "int32"));
        return [lossT.dataSync()[0] ?? NaN, hitsT.dataSync()[0] ?? NaN];
      });
      lossSum += loss;
      correct += hits;
    }
    const n = all.length;
    return { loss: n === 0 ? 0 : lossSum / n, accuracy: n === 0 ? 0 : correct / n, n };
  }

  /** Releases the model's tensors. The dataset stays cached for the process. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.built.model.dispose();
  }

  /** The summed cross-entropy of a classifier's batch, as a function for `tf.variableGrads`. */
  private classifyLoss(batch: Batch): () => tfc.Scalar {
    const { tf } = this;
    const x = tf.tensor(batch.x, [batch.n, ...this.built.inputShape]);
    const labels = tf.oneHot(tf.tensor1d(batch.y, "int32"), this.dataset.numClasses);
    return () => this.lossSum(applyModel(this.built.model, x, true), labels);
  }

  /** Summed softmax cross-entropy of logits (or of probabilities, for a softmax-ended model). */
  private lossSum(out: tfc.Tensor, oneHot: tfc.Tensor): tfc.Scalar {
    const { tf } = this;
    const logProbs = this.built.outputsProbabilities
      ? tf.log(tf.clipByValue(out, 1e-7, 1))
      : tf.logSoftmax(out as tfc.Tensor2D);
    return tf.neg(tf.sum(tf.mul(oneHot, logProbs)));
  }

  /**
   * Copies tensors' values into one new flat vector, tensor by tensor (no concat kernel, one
   * copy). The copy matters: backends may hand out their internal arrays.
   */
  private flatten(tensors: Array<tfc.Tensor | undefined>): Float32Array {
    const flat = new Float32Array(this.paramCount);
    this.built.weights.forEach((w, i) => {
      const tensor = tensors[i];
      if (!tensor) throw new Error(`engine: no gradient for weight ${i}`);
      flat.set(tensor.dataSync() as Float32Array, w.offset);
    });
    return flat;
  }

  private check(length: number): void {
    if (this.disposed) throw new Error("ComputeEngine is disposed");
    if (length !== this.paramCount) throw new ParamLengthError(this.paramCount, length);
    ensureActive(this.tfBackend);
  }
}
