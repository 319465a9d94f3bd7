import { Worker, type ResourceLimits } from "node:worker_threads";
import type { EngineInfo, EngineOptions, EvalResult, GradientResult } from "./engine.js";
import type { OptimizerSpec } from "./optimizer.js";
import { ComputeWorkerError, WorkerClosedError } from "./errors.js";
import { reviveError, type WorkerReply, type WorkerRequest } from "./worker-protocol.js";

/** Distributes `Omit` over a union (plain `Omit` would merge the request variants). */
type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

interface Pending {
  op: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** Options of {@link ComputeWorker.setParams}. */
export interface SetParamsOptions {
  /**
   * Move `params`' buffer to the worker instead of copying it; the caller's array is detached
   * (length 0) afterwards. Default false.
   */
  transfer?: boolean;
}

/**
 * Heap limits of a compute worker thread. Measured (v8 heap used, peak over 20 gradient batches of
 * 256 samples, in one engine): mnist-mlp 89 MB (cpu) / 85 MB (wasm), mnist-cnn 83 MB, spam-bow
 * 121 MB. Tensors and datasets live in array buffers, outside this limit. 1 GiB leaves ~8× headroom
 * for user models (up to the job spec's parameter bound) while a runaway worker dies alone, with
 * `ERR_WORKER_OUT_OF_MEMORY`, instead of taking the daemon's heap with it.
 */
export const WORKER_RESOURCE_LIMITS: Readonly<ResourceLimits> = Object.freeze({
  maxOldGenerationSizeMb: 1024,
  stackSizeMb: 8,
});

/**
 * A {@link ComputeEngine} in its own `worker_threads` thread, so long tensor operations never
 * block the caller's event loop (heartbeats, message handling). Requests run in call order.
 * Result arrays are transferred, not copied. A failure inside the worker rejects the call with a
 * {@link ComputeWorkerError} whose `cause` is the worker's error, revived as its own class when it
 * is one of this layer's (e.g. `ModelDataMismatchError`); a worker that exits or is closed
 * rejects every pending call with {@link WorkerClosedError}.
 *
 * Each worker thread loads its own copy of tfjs and of the dataset (a few hundred ms to ~1.5 s).
 */
export class ComputeWorker implements AsyncDisposable {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed: Error | undefined;
  private engineInfo: EngineInfo | undefined;

  /**
   * Starts the thread (from the compiled `worker-entry.js` next to this file); call `init` next.
   * @param resourceLimits - the thread's heap limits (default {@link WORKER_RESOURCE_LIMITS}).
   */
  constructor(resourceLimits: ResourceLimits = WORKER_RESOURCE_LIMITS) {
    this.worker = new Worker(new URL("./worker-entry.js", import.meta.url), {
      resourceLimits: { ...resourceLimits },
    });
    this.worker.on("message", (reply: WorkerReply) => this.onReply(reply));
    this.worker.on("error", (err) =>
      this.fail(new WorkerClosedError("compute worker crashed", { cause: err })),
    );
    this.worker.on("messageerror", (err) =>
      this.fail(new WorkerClosedError("compute worker sent an unreadable message", { cause: err })),
    );
    this.worker.on("exit", (code) =>
      this.fail(new WorkerClosedError(`compute worker exited with code ${code}`)),
    );
  }

  /** Starts a worker and initialises its engine; closes the worker again if `init` fails. */
  static async start(options: EngineOptions, resourceLimits?: ResourceLimits): Promise<ComputeWorker> {
    const worker = new ComputeWorker(resourceLimits);
    try {
      await worker.init(options);
      return worker;
    } catch (err) {
      await worker.close();
      throw err;
    }
  }

  /** The engine's facts after a successful `init`. */
  get info(): EngineInfo | undefined {
    return this.engineInfo;
  }

  /** The limits the thread runs under (as `worker_threads` reports them). */
  get resourceLimits(): ResourceLimits {
    return this.worker.resourceLimits ?? {};
  }

  /** The worker thread's id (as `worker_threads` numbers it). */
  get threadId(): number {
    return this.worker.threadId;
  }

  /** Creates (or replaces) the worker's engine: dataset, backend selection, model. */
  async init(options: EngineOptions): Promise<EngineInfo> {
    this.engineInfo = (await this.call({ op: "init", options })) as EngineInfo;
    return this.engineInfo;
  }

  /** See {@link ComputeEngine.initParams}. */
  initParams(seed?: number): Promise<Float32Array> {
    return this.call({ op: "initParams", seed }) as Promise<Float32Array>;
  }

  /** See {@link ComputeEngine.setParams}; copies `params` unless `transfer` is set. */
  async setParams(params: Float32Array, options: SetParamsOptions = {}): Promise<void> {
    const transfer = options.transfer === true ? [params.buffer as ArrayBuffer] : [];
    await this.call({ op: "setParams", params }, transfer);
  }

  /** See {@link ComputeEngine.getParams}. */
  getParams(): Promise<Float32Array> {
    return this.call({ op: "getParams" }) as Promise<Float32Array>;
  }

  /** See {@link ComputeEngine.gradients}; `step` chooses the masks of `task: "mlm"` (default 0). */
  gradients(indices: readonly number[], step = 0): Promise<GradientResult> {
    return this.call({ op: "gradients", indices, step }) as Promise<GradientResult>;
  }

  /** See {@link ComputeEngine.localSteps}. */
  localSteps(
    indices: readonly number[],
    steps: number,
    optimizer: OptimizerSpec,
    round: number,
  ): Promise<GradientResult> {
    return this.call({ op: "localSteps", indices, steps, optimizer, round }) as Promise<GradientResult>;
  }

  /** See {@link ComputeEngine.evaluate}. */
  evaluate(indices?: readonly number[]): Promise<EvalResult> {
    return this.call({ op: "evaluate", indices }) as Promise<EvalResult>;
  }

  /** Terminates the thread (even mid-computation); pending calls reject with {@link WorkerClosedError}. */
  async close(): Promise<void> {
    if (this.closed !== undefined) return;
    this.fail(new WorkerClosedError());
    await this.worker.terminate();
  }

  /** Same as {@link ComputeWorker.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private call(request: WithoutId<WorkerRequest>, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.closed !== undefined)
      return Promise.reject(new WorkerClosedError(undefined, { cause: this.closed }));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { op: request.op, resolve, reject });
      try {
        this.worker.postMessage({ ...request, id }, transfer);
      } catch (err) {
        this.pending.delete(id);
        reject(
          new ComputeWorkerError(`could not send "${request.op}" to the compute worker`, { cause: err }),
        );
      }
    });
  }

  private onReply(reply: WorkerReply): void {
    const pending = this.pending.get(reply.id);
    if (pending === undefined) return;
    this.pending.delete(reply.id);
    if (reply.ok) {
      pending.resolve(reply.value);
      return;
    }
    const cause = reviveError(reply.error);
    pending.reject(
      new ComputeWorkerError(`"${pending.op}" failed in the compute worker: ${cause.message}`, { cause }),
    );
  }

  /** Marks the worker closed (first reason wins) and rejects every pending call. */
  private fail(reason: Error): void {
    this.closed ??= reason;
    for (const pending of this.pending.values()) pending.reject(reason);
    this.pending.clear();
  }
}
