import { Worker } from "node:worker_threads";
import type { ModelBundle } from "./model.js";

/** A request to the predictor's thread. */
export type WorkerAsk =
  | { id: number; kind: "load"; bundle: ModelBundle; name: string }
  | { id: number; kind: "predict"; n: number; x: Float64Array; text?: string[] };

/** The thread's answer: the model's input layout after a load, the probabilities after a predict. */
export type WorkerAnswer =
  | { id: number; ok: true; width: number; text: boolean }
  | { id: number; ok: true; probs: Float32Array }
  | { id: number; ok: false; error: string };

/** The model's input layout, as a loaded model reports it. */
export interface LoadedLayout {
  width: number;
  text: boolean;
}

/**
 * The model of a predictor in its own thread, as trainers and evaluators run theirs: loading tfjs
 * and a model takes seconds on a loaded machine, and a daemon whose event loop stalls that long
 * misses heartbeats and is declared dead.
 */
export class PredictorWorker {
  private readonly worker = new Worker(new URL("./worker-entry.js", import.meta.url));
  private readonly waiting = new Map<
    number,
    { resolve: (a: WorkerAnswer) => void; reject: (e: Error) => void }
  >();
  private nextId = 0;
  private closed: Error | undefined;

  constructor() {
    this.worker.on("message", (a: WorkerAnswer) => {
      const w = this.waiting.get(a.id);
      this.waiting.delete(a.id);
      w?.resolve(a);
    });
    this.worker.on("error", (err) => this.fail(new Error(`predictor thread crashed: ${err.message}`)));
    this.worker.on("exit", (code) => this.fail(new Error(`predictor thread exited with code ${code}`)));
    this.worker.unref();
  }

  /** Opens `bundle` in the thread; rejects with the reason it cannot be opened. */
  async load(bundle: ModelBundle, name: string): Promise<LoadedLayout> {
    const a = await this.ask({ id: this.nextId++, kind: "load", bundle, name });
    if (!a.ok) throw new Error(a.error);
    if (!("width" in a)) throw new Error("predictor thread answered a load with probabilities");
    return { width: a.width, text: a.text };
  }

  /** The class probabilities of `n` records given their raw features (and text). */
  async predict(n: number, x: Float64Array, text?: string[]): Promise<Float32Array> {
    const a = await this.ask({ id: this.nextId++, kind: "predict", n, x, ...(text ? { text } : {}) });
    if (!a.ok) throw new Error(a.error);
    if (!("probs" in a)) throw new Error("predictor thread answered a prediction with a layout");
    return a.probs;
  }

  /** Ends the thread. */
  async close(): Promise<void> {
    this.fail(new Error("predictor thread closed"));
    await this.worker.terminate();
  }

  private ask(req: WorkerAsk): Promise<WorkerAnswer> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiting.set(req.id, { resolve, reject });
      this.worker.postMessage(req);
    });
  }

  private fail(error: Error): void {
    this.closed ??= error;
    for (const w of this.waiting.values()) w.reject(error);
    this.waiting.clear();
  }
}
