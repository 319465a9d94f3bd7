import { OptimizerStateError, ParamLengthError } from "./errors.js";

/**
 * Pure-JS optimizers over one Float32Array slice of the parameters. The arithmetic is plain IEEE
 * double maths rounded to float32 on store, with no `Math.pow` (bias corrections are running
 * products), so a step gives bit-identical results on every machine and engine; this is what lets
 * a reducer checkpoint its slice's state and a replacement continue exactly.
 */

/**
 * Stochastic gradient descent, with optional momentum: v = μv + g, then p -= lr·v (heavy ball)
 * or, with `nesterov`, p -= lr·(g + μv) (Sutskever's form, as PyTorch's SGD and DiLoCo's outer
 * optimizer use it).
 */
export interface SgdSpec {
  name: "sgd";
  lr: number;
  /** Default 0 (plain SGD, no state). */
  momentum?: number;
  /** Nesterov momentum (default false); needs momentum > 0 to differ from plain SGD. */
  nesterov?: boolean;
  /** Linear learning-rate warmup over this many steps (see {@link warmupLr}); default 0, none. */
  warmup?: number;
}

/** Adam (Kingma & Ba) with bias correction. */
export interface AdamSpec {
  name: "adam";
  lr: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  epsilon?: number;
  /** Linear learning-rate warmup over this many steps (see {@link warmupLr}); default 0, none. */
  warmup?: number;
}

/** The hyperparameters of an optimizer, as a job spec carries them. */
export type OptimizerSpec = SgdSpec | AdamSpec;

/**
 * Everything needed to continue an optimizer bit-exactly: its kind, the number of steps taken and
 * its per-parameter buffers (sgd: [velocity] when momentum > 0, else []; adam: [m, v]). Buffers
 * are empty before the first step. Hyperparameters are not included: they come from the job spec.
 */
export interface OptimizerState {
  name: OptimizerSpec["name"];
  t: number;
  buffers: Float32Array[];
}

/** An optimizer bound to one parameter slice (its length is fixed by the first step). */
export interface Optimizer {
  readonly name: OptimizerSpec["name"];
  /** Steps taken so far. */
  readonly t: number;
  /**
   * Applies one update to `params` in place. `grad` is the (already averaged) gradient; it is
   * multiplied by `gradScale` first (default 1), so a reducer holding a gradient sum can pass
   * `1 / totalCount` instead of allocating a divided copy.
   */
  step(params: Float32Array, grad: Float32Array, gradScale?: number): void;
  /** A deep copy of the state. */
  exportState(): OptimizerState;
  /** Replaces the state with a deep copy of `state`; throws {@link OptimizerStateError} if it does not fit. */
  importState(state: OptimizerState): void;
}

/**
 * The learning rate of step `t` (1-based) under a linear warmup of `warmup` steps: `lr · t / warmup`
 * until `t` reaches `warmup`, then `lr` (Goyal et al.'s large-batch recipe; BERT pre-trains with
 * one). A function of the step count only, so every replica and a reducer restored from a
 * checkpoint (which keeps `t`) apply the same rate.
 */
export function warmupLr(lr: number, warmup: number, t: number): number {
  return warmup > 0 && t < warmup ? (lr * t) / warmup : lr;
}

/** Creates an optimizer from its spec; throws `RangeError` on hyperparameters out of range. */
export function createOptimizer(spec: OptimizerSpec): Optimizer {
  checkPositive("lr", spec.lr);
  const warmup = checkSteps("warmup", spec.warmup ?? 0);
  switch (spec.name) {
    case "sgd":
      return new Sgd(spec.lr, checkUnit("momentum", spec.momentum ?? 0), spec.nesterov === true, warmup);
    case "adam":
      checkPositive("epsilon", spec.epsilon ?? 1e-8);
      return new Adam(
        spec.lr,
        checkUnit("beta1", spec.beta1 ?? 0.9),
        checkUnit("beta2", spec.beta2 ?? 0.999),
        spec.epsilon ?? 1e-8,
        warmup,
      );
    default:
      throw new RangeError(`unknown optimizer "${(spec as { name: string }).name}"`);
  }
}

function checkPositive(what: string, x: number): number {
  if (!Number.isFinite(x) || x <= 0) throw new RangeError(`${what} must be a finite number > 0, got ${x}`);
  return x;
}

function checkSteps(what: string, x: number): number {
  if (!Number.isSafeInteger(x) || x < 0) throw new RangeError(`${what} must be an integer >= 0, got ${x}`);
  return x;
}

function checkUnit(what: string, x: number): number {
  if (!Number.isFinite(x) || x < 0 || x >= 1) throw new RangeError(`${what} must be in [0, 1), got ${x}`);
  return x;
}

abstract class BaseOptimizer implements Optimizer {
  abstract readonly name: OptimizerSpec["name"];
  t = 0;
  protected buffers: Float32Array[] = [];
  protected abstract readonly bufferCount: number;

  step(params: Float32Array, grad: Float32Array, gradScale = 1): void {
    if (grad.length !== params.length) throw new ParamLengthError(params.length, grad.length, "gradient");
    if (this.buffers.length === 0 && this.bufferCount > 0) {
      this.buffers = Array.from({ length: this.bufferCount }, () => new Float32Array(params.length));
    } else {
      const first = this.buffers[0];
      if (first && first.length !== params.length)
        throw new ParamLengthError(first.length, params.length, "parameter slice");
    }
    this.t += 1;
    this.update(params, grad, gradScale);
  }

  protected abstract update(params: Float32Array, grad: Float32Array, gradScale: number): void;

  exportState(): OptimizerState {
    return { name: this.name, t: this.t, buffers: this.buffers.map((b) => b.slice()) };
  }

  importState(state: OptimizerState): void {
    if (state.name !== this.name) {
      throw new OptimizerStateError(`state of a "${state.name}" optimizer given to "${this.name}"`);
    }
    if (!Number.isSafeInteger(state.t) || state.t < 0) {
      throw new OptimizerStateError(`step count must be a non-negative integer, got ${state.t}`);
    }
    const expected = state.t === 0 && state.buffers.length === 0 ? 0 : this.bufferCount;
    if (state.buffers.length !== expected) {
      throw new OptimizerStateError(`expected ${expected} state buffers, got ${state.buffers.length}`);
    }
    const len = state.buffers[0]?.length ?? 0;
    if (state.buffers.some((b) => !(b instanceof Float32Array) || b.length !== len)) {
      throw new OptimizerStateError("state buffers must be Float32Arrays of one length");
    }
    this.t = state.t;
    this.buffers = state.buffers.map((b) => b.slice());
    this.restored();
  }

  /** Hook for derived quantities that are recomputed from `t` after an import. */
  protected restored(): void {}
}

class Sgd extends BaseOptimizer {
  readonly name = "sgd";
  protected readonly bufferCount: number;

  constructor(
    private readonly baseLr: number,
    private readonly momentum: number,
    private readonly nesterov: boolean,
    private readonly warmup: number,
  ) {
    super();
    this.bufferCount = momentum > 0 ? 1 : 0;
  }

  protected update(params: Float32Array, grad: Float32Array, scale: number): void {
    const { momentum } = this;
    const lr = warmupLr(this.baseLr, this.warmup, this.t);
    if (this.bufferCount === 0) {
      // Indices below params.length are in range: step() checked grad and the buffers have that length.
      for (let i = 0; i < params.length; i++) params[i]! -= lr * (grad[i]! * scale);
      return;
    }
    const [v] = this.buffers;
    if (!v) throw new Error("sgd: momentum buffer missing");
    if (this.nesterov) {
      for (let i = 0; i < params.length; i++) {
        const g = grad[i]! * scale;
        v[i] = momentum * v[i]! + g;
        params[i]! -= lr * (g + momentum * v[i]!);
      }
      return;
    }
    for (let i = 0; i < params.length; i++) {
      v[i] = momentum * v[i]! + grad[i]! * scale;
      params[i]! -= lr * v[i]!;
    }
  }
}

class Adam extends BaseOptimizer {
  readonly name = "adam";
  protected readonly bufferCount = 2;
  /** beta1^t and beta2^t as running products (exactly reproducible, unlike Math.pow). */
  private beta1Power = 1;
  private beta2Power = 1;

  constructor(
    private readonly baseLr: number,
    private readonly beta1: number,
    private readonly beta2: number,
    private readonly epsilon: number,
    private readonly warmup: number,
  ) {
    super();
  }

  protected update(params: Float32Array, grad: Float32Array, scale: number): void {
    const { beta1, beta2, epsilon } = this;
    const lr = warmupLr(this.baseLr, this.warmup, this.t);
    this.beta1Power *= beta1;
    this.beta2Power *= beta2;
    const c1 = 1 - this.beta1Power;
    const c2 = 1 - this.beta2Power;
    const [m, v] = this.buffers;
    if (!m || !v) throw new Error("adam: moment buffers missing");
    // Indices below params.length are in range: step() checked grad and the buffers have that length.
    for (let i = 0; i < params.length; i++) {
      const g = grad[i]! * scale;
      m[i] = beta1 * m[i]! + (1 - beta1) * g;
      v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
      params[i]! -= (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + epsilon);
    }
  }

  protected override restored(): void {
    this.beta1Power = 1;
    this.beta2Power = 1;
    for (let i = 0; i < this.t; i++) {
      this.beta1Power *= this.beta1;
      this.beta2Power *= this.beta2;
    }
  }
}
