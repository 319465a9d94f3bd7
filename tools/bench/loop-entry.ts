/**
 * A worker thread of `flock bench`'s raw scaling measurement: it runs the plain tfjs loop
 * (`plainTrainLoop`) each time the bench thread asks, one loop at a time, and replies with its
 * samples/s. Started by `raw-scaling.ts` from the compiled file next to it.
 * @module
 */
import { parentPort } from "node:worker_threads";
import { plainTrainLoop } from "../../actors/compute/baseline.js";
import { LoopRequest, type LoopReply } from "./loop-protocol.js";
import { loopOptions } from "./workloads.js";

const port = parentPort;
if (!port) throw new Error("loop-entry.js runs only as a worker thread");

port.on("message", (data: unknown) => {
  const request = LoopRequest.safeParse(data);
  if (!request.success) return;
  const { id, workload, steps } = request.data;
  plainTrainLoop(loopOptions(workload, steps)).then(
    (r) =>
      port.postMessage({
        type: "done",
        id,
        samplesPerSec: r.samplesPerSec,
        backend: r.backend,
      } satisfies LoopReply),
    (err: unknown) => port.postMessage({ type: "failed", id, message: String(err) } satisfies LoopReply),
  );
});
