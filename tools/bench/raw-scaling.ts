import { Worker } from "node:worker_threads";
import { LoopReply, type LoopRequest } from "./loop-protocol.js";
import { median } from "./stats.js";
import { loopOptions, type Workload } from "./workloads.js";

/** Sizes of one raw scaling measurement. */
export interface RawScalingPlan {
  /** Rounds of (one loop alone, two loops at once), interleaved. */
  rounds: number;
  /** Steps of each loop in a round, and of the warm-up both threads run first. */
  steps: number;
  warmupSteps: number;
}

/** What two plain tfjs loops in two threads reach against one. */
export interface RawScalingResult {
  workload: Workload;
  backend: string;
  /** Samples/s of one loop alone, per round. */
  oneThreadSamplesPerSec: number[];
  /** Samples/s of two loops at once (their sum), per round. */
  twoThreadSamplesPerSec: number[];
  /** Median two-thread ÷ median one-thread samples/s. */
  rawScaling2: number;
  /** One loop's step at its median samples/s, ms. */
  oneThreadStepMs: number;
}

/** A worker thread that runs the plain tfjs loop on request (see `loop-entry.ts`). */
class LoopThread {
  private readonly worker = new Worker(new URL("./loop-entry.js", import.meta.url));
  private readonly pending = new Map<
    number,
    { resolve: (r: LoopReply) => void; reject: (e: Error) => void }
  >();
  private nextId = 1;

  constructor() {
    this.worker.on("message", (data: unknown) => {
      const reply = LoopReply.safeParse(data);
      if (!reply.success) return;
      const waiter = this.pending.get(reply.data.id);
      this.pending.delete(reply.data.id);
      waiter?.resolve(reply.data);
    });
    const fail = (err: Error) => {
      for (const w of this.pending.values()) w.reject(err);
      this.pending.clear();
    };
    this.worker.on("error", fail);
    this.worker.on("exit", (code) => fail(new Error(`loop thread exited with code ${code}`)));
  }

  /** Runs one loop; resolves with its samples/s and backend. */
  async run(workload: Workload, steps: number): Promise<{ samplesPerSec: number; backend: string }> {
    const id = this.nextId++;
    const reply = await new Promise<LoopReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ type: "run", id, workload, steps } satisfies LoopRequest);
    });
    if (reply.type === "failed") throw new Error(`plain loop in a worker thread failed: ${reply.message}`);
    return reply;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/**
 * Two plain tfjs loops (`plainTrainLoop`, the one-worker job's batch) in two worker threads
 * against one loop in one thread, in interleaved rounds (one, two, one, two, …) so both sides
 * see the same load; the ratio of the medians is the machine's own limit for two workers. Both
 * threads load tfjs and the data and run a warm-up loop together first.
 */
export async function measureRawScaling(workload: Workload, plan: RawScalingPlan): Promise<RawScalingResult> {
  const threads = [new LoopThread(), new LoopThread()] as const;
  try {
    const [warm] = await Promise.all(threads.map((t) => t.run(workload, plan.warmupSteps)));
    const one: number[] = [];
    const two: number[] = [];
    for (let round = 0; round < plan.rounds; round++) {
      one.push((await threads[0].run(workload, plan.steps)).samplesPerSec);
      // Both loops run the same steps, so the slower one's time covers both: twice its rate is
      // what the pair sustained together (the sum of the two would count the faster one's
      // share of the machine once it ran alone).
      const pair = await Promise.all(threads.map((t) => t.run(workload, plan.steps)));
      two.push(2 * Math.min(...pair.map((r) => r.samplesPerSec)));
    }
    const oneMedian = median(one);
    return {
      workload,
      backend: warm?.backend ?? "unknown",
      oneThreadSamplesPerSec: one,
      twoThreadSamplesPerSec: two,
      rawScaling2: median(two) / oneMedian,
      oneThreadStepMs: (1000 * loopOptions(workload, 1).batchSize) / oneMedian,
    };
  } finally {
    await Promise.all(threads.map((t) => t.close()));
  }
}
