/**
 * The thread side of `ComputeWorker`: owns one ComputeEngine and answers requests strictly in
 * arrival order. Not meant to be imported; `worker.ts` starts it from the compiled JS.
 */
import { parentPort } from "node:worker_threads";
import { ComputeEngine } from "./engine.js";
import { serializeError, type WorkerReply, type WorkerRequest } from "./worker-protocol.js";

if (parentPort === null) throw new Error("worker-entry.js must run in a worker thread");
const port = parentPort;
let engine: ComputeEngine | undefined;
let queue: Promise<void> = Promise.resolve();

port.on("message", (request: WorkerRequest) => {
  queue = queue.then(() => answer(request));
});

async function answer(request: WorkerRequest): Promise<void> {
  let reply: WorkerReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const value = await handle(request);
    transfer = transferables(value);
    reply = { id: request.id, ok: true, value };
  } catch (err) {
    reply = { id: request.id, ok: false, error: serializeError(err) };
  }
  port.postMessage(reply, transfer);
}

async function handle(request: WorkerRequest): Promise<unknown> {
  if (request.op === "init") {
    engine?.dispose();
    engine = undefined;
    engine = await ComputeEngine.create(request.options);
    return engine.info;
  }
  if (engine === undefined) throw new Error(`"${request.op}" before a successful "init"`);
  switch (request.op) {
    case "initParams":
      return engine.initParams(request.seed);
    case "setParams":
      return engine.setParams(request.params);
    case "getParams":
      return engine.getParams();
    case "gradients":
      return engine.gradients(request.indices, request.step);
    case "localSteps":
      return engine.localSteps(request.indices, request.steps, request.optimizer, request.round);
    case "evaluate":
      return engine.evaluate(request.indices);
    default:
      throw new Error(`unknown request ${JSON.stringify(request satisfies never)}`);
  }
}

/** The buffers of result Float32Arrays: moved to the caller, not copied (the engine keeps none). */
function transferables(value: unknown): ArrayBuffer[] {
  if (value instanceof Float32Array) return [value.buffer as ArrayBuffer];
  const grad = (value as { grad?: unknown } | undefined)?.grad;
  return grad instanceof Float32Array ? [grad.buffer as ArrayBuffer] : [];
}
