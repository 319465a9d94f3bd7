/**
 * The thread side of `PredictorWorker`: opens one model and predicts ranges, strictly in arrival
 * order. Not meant to be imported; `worker.ts` starts it from the compiled JS.
 */
import { parentPort } from "node:worker_threads";
import { openModel, type OpenModel } from "./model.js";
import { predictRange } from "./predict.js";
import type { WorkerAnswer, WorkerAsk } from "./worker.js";

if (parentPort === null) throw new Error("worker-entry.js must run in a worker thread");
const port = parentPort;
let model: OpenModel | undefined;
let queue: Promise<void> = Promise.resolve();

port.on("message", (ask: WorkerAsk) => {
  queue = queue.then(() => answer(ask));
});

async function answer(ask: WorkerAsk): Promise<void> {
  try {
    if (ask.kind === "load") {
      model?.dispose();
      model = undefined;
      model = await openModel(ask.bundle, ask.name);
      const reply: WorkerAnswer = {
        id: ask.id,
        ok: true,
        width: model.preprocessing.features.length,
        text: model.preprocessing.text !== undefined || model.preprocessing.tokens !== undefined,
      };
      return port.postMessage(reply);
    }
    if (!model) throw new Error("no model loaded");
    const probs = await predictRange(model, { x: ask.x, ...(ask.text ? { text: ask.text } : {}) }, 0, ask.n);
    const reply: WorkerAnswer = { id: ask.id, ok: true, probs };
    port.postMessage(reply, [probs.buffer as ArrayBuffer]);
  } catch (error) {
    const reply: WorkerAnswer = { id: ask.id, ok: false, error: (error as Error).message };
    port.postMessage(reply);
  }
}
