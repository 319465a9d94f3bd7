import type { NatsConnection } from "nats";
import type { ParamsSlice } from "../../messages/index.js";
import { ActorSystem, type Behavior, type Message } from "../../runtime/actor/index.js";
import { NatsTransport } from "../../runtime/transport/index.js";
import { resolveJobSpec } from "../../actors/api.js";
import { jobNames } from "../../actors/job/names.js";
import { TRAINING_MESSAGES } from "../../actors/kinds.js";
import { reducerBehavior } from "../../actors/reducer/behavior.js";
import type { ReducerCommand } from "../../actors/reducer/protocol.js";
import { createOptimizer } from "../../actors/compute/optimizer.js";
import type { JobSpec } from "../../actors/job/spec.js";
import { GradEncoder } from "../../actors/trainer/grad-codec.js";
import { createCodec } from "../../messages/codec.js";
import { median } from "./stats.js";

/** Sizes of the reduce measurement. */
export interface ReducePlan {
  members: number;
  /** Bytes of each trainer's gradient (float32). */
  gradientBytes: number;
  /** Measured steps of each (raw, flock), interleaved; the median counts. */
  steps: number;
}

/** What the reduce measurement found. */
export interface ReduceResult {
  rawStepMs: number;
  flockStepMs: number;
  reduceWireRatio: number;
  /** Bytes that cross the server per step (reduce-scatter in, all-gather out to every member). */
  bytesPerStep: number;
  /**
   * Of the flock step, the reducers' own arithmetic (sum of the members' slices, optimizer step),
   * timed alone on this thread: work the raw side does not do.
   */
  reducerArithmeticMs: number;
  /**
   * Bytes of the gradient slices that cross the server per step (the messages a trainer sends to
   * reducers on other nodes, envelopes included), float32 and with `compression: "fp16"`.
   */
  gradWireBytes: { none: number; fp16: number };
  /** `gradWireBytes.fp16 / gradWireBytes.none`. */
  fp16WireRatio: number;
  /** Median time of the same step with fp16 gradients (the trainers' encoding included). */
  fp16StepMs: number;
  /** `fp16StepMs / flockStepMs`: below 1 when the smaller slices save more than encoding costs. */
  fp16StepRatio: number;
}

const STEP_TIMEOUT_MS = 20_000;

/**
 * One synchronous step's communication for `members` trainers and as many reducers: every trainer
 * sends slice r of its gradient to reducer r (reduce-scatter), every reducer publishes its new
 * parameter slice once and every trainer receives all of them (all-gather). The flock side runs
 * the real reducer behaviour (sum in member order, optimizer, publish on the job's params topic)
 * through the runtime's tell and publish; the raw side moves the same bytes over the same server
 * with bare NATS publishes. Each member is a node with its own connection, all in this process.
 * The flock step is also run with fp16 gradient slices (each member encoding through its own
 * error-feedback encoder, as a trainer does), interleaved with the float32 one.
 */
export async function measureReduce(url: string, cluster: string, plan: ReducePlan): Promise<ReduceResult> {
  const n = plan.members;
  const length = Math.floor(plan.gradientBytes / 4);
  const bounds = Array.from({ length: n + 1 }, (_, r) => Math.round((r * length) / n));
  const grads = Array.from({ length: n }, (_, i) =>
    Float32Array.from({ length }, (_, k) => Math.sin(k + i) * 1e-3),
  );
  const transports = await Promise.all(
    Array.from({ length: n }, (_, i) => NatsTransport.connect({ servers: url, name: `bench-reduce-${i}` })),
  );
  const systems: ActorSystem[] = [];
  try {
    for (let i = 0; i < n; i++)
      systems.push(await ActorSystem.start({ nodeId: `bench-m${i}`, transport: transports[i]!, cluster }));
    const flock = await setUpFlock(systems, bounds);
    const raw = setUpRaw(
      transports.map((t) => t.connection),
      bounds,
      grads,
    );
    await Promise.all(transports.map((t) => t.flush()));
    const rawMs: number[] = [];
    const flockMs: number[] = [];
    const fp16Ms: number[] = [];
    // Each side keeps its own encoders: the fp16 ones carry their error feedback from step to step.
    const encoders = {
      none: grads.map(() => new GradEncoder("none")),
      fp16: grads.map(() => new GradEncoder("fp16")),
    };
    for (let s = 0; s < plan.steps + 2; s++) {
      const r = await raw.step(s);
      const f = await flock.step(2 * s + 1, grads, encoders.none);
      const h = await flock.step(2 * s + 2, grads, encoders.fp16);
      if (s >= 2) {
        rawMs.push(r);
        flockMs.push(f);
        fp16Ms.push(h);
      }
    }
    raw.close();
    const rawStepMs = median(rawMs);
    const flockStepMs = median(flockMs);
    const fp16StepMs = median(fp16Ms);
    const gradWireBytes = { none: flock.wireBytes(grads, "none"), fp16: flock.wireBytes(grads, "fp16") };
    return {
      rawStepMs,
      flockStepMs,
      reduceWireRatio: rawStepMs / flockStepMs,
      bytesPerStep: 2 * n * length * 4,
      reducerArithmeticMs: reducerArithmetic(grads, bounds),
      gradWireBytes,
      fp16WireRatio: gradWireBytes.fp16 / gradWireBytes.none,
      fp16StepMs,
      fp16StepRatio: fp16StepMs / flockStepMs,
    };
  } finally {
    for (const s of systems) await s.stop().catch(() => undefined);
    for (const t of transports) await t.close().catch(() => undefined);
  }
}

interface Side {
  /** One step with member i's gradient sent through `encoders[i]`; its time in ms. */
  step(s: number, grads: Float32Array[], encoders: GradEncoder[]): Promise<number>;
  /** Bytes of the envelopes of one step's slices to reducers on other nodes, in `compression`. */
  wireBytes(grads: Float32Array[], compression: JobSpec["compression"]): number;
}

async function setUpFlock(systems: ActorSystem[], bounds: number[]): Promise<Side> {
  const n = systems.length;
  const spec = resolveJobSpec("mnist", { id: "bench-reduce", maxWorkers: n });
  const job = spec.id!;
  const members = systems.map((s) => s.nodeId).sort();
  let onVersion: ((version: number, member: number) => void) | undefined;
  for (const [i, system] of systems.entries()) {
    system.registry.register(...TRAINING_MESSAGES);
    const host = {
      publish: <M extends Message>(t: string, m: M) => system.publish(t, m),
      blobs: () => Promise.reject(new Error("no blob store in the benchmark")),
    };
    const r = i;
    system.spawn(
      reducerBehavior({ job, r, offset: bounds[r]!, length: bounds[r + 1]! - bounds[r]!, spec }, host),
      { name: jobNames.reducer(job, r) },
    );
    const got = new Map<number, number>();
    const trainer: Behavior<ParamsSlice, undefined> = {
      receive(_s, msg) {
        if (msg.type !== "params.slice") return;
        const v = msg.version;
        const count = (got.get(v) ?? 0) + 1;
        got.set(v, count);
        if (count === n) {
          got.delete(v);
          onVersion?.(v, i);
        }
      },
    };
    system.subscribeTopic(jobNames.paramsTopic(job), system.spawn(trainer, { name: "trainer" }));
  }
  const coordinator = systems[0]!.spawn({ receive: () => undefined }, { name: "coordinator" });
  const reducers = systems.map((s, r) => s.ref<ReducerCommand>(`${s.nodeId}/${jobNames.reducer(job, r)}`));
  await Promise.all(
    reducers.map((ref, r) =>
      ref.ask(
        {
          type: "reducer.load",
          term: 1,
          version: 0,
          data: new Float32Array(bounds[r + 1]! - bounds[r]!),
          checkpointStep: null,
        },
        { timeoutMs: 10_000 },
      ),
    ),
  );
  const map = { addresses: reducers.map((ref) => ref.address), bounds };
  /** Member i's slices for `step`, as the trainer sends them. */
  const slices = (i: number, step: number, g: Float32Array, encoder: GradEncoder) =>
    encoder.encode(step, g, map).map(({ address, data }) => ({
      address,
      msg: {
        type: "reducer.grad" as const,
        term: 1,
        step,
        attempt: 0,
        member: systems[i]!.nodeId,
        n: 16,
        data,
      },
    }));
  return {
    wireBytes(grads, compression) {
      const codec = createCodec();
      let bytes = 0;
      grads.forEach((g, i) => {
        const from = `${systems[i]!.nodeId}/trainer`;
        for (const [r, { address, msg }] of slices(i, 1, g, new GradEncoder(compression)).entries())
          if (r !== i)
            bytes += codec.encode({
              v: 1,
              type: msg.type,
              id: `${i}-${r}`,
              from,
              to: address,
              body: msg,
            }).length;
      });
      return bytes;
    },
    step(step, grads, encoders) {
      return new Promise((resolve, reject) => {
        const done = new Set<number>();
        const started = performance.now();
        const timer = setTimeout(
          () => reject(new Error(`flock reduce step ${step} did not finish within ${STEP_TIMEOUT_MS} ms`)),
          STEP_TIMEOUT_MS,
        );
        onVersion = (v, member) => {
          if (v !== step) return;
          done.add(member);
          if (done.size === n) {
            clearTimeout(timer);
            resolve(performance.now() - started);
          }
        };
        for (let i = 0; i < n; i++)
          for (const { address, msg } of slices(i, step, grads[i]!, encoders[i]!))
            systems[i]!.ref<ReducerCommand>(address).tell(msg);
        for (const ref of reducers)
          ref.tell(
            {
              type: "reducer.commit",
              term: 1,
              step,
              attempt: 0,
              contributors: members,
              total: 16 * n,
            },
            coordinator,
          );
      });
    },
  };
}

function setUpRaw(
  conns: NatsConnection[],
  bounds: number[],
  grads: Float32Array[],
): { step(s: number): Promise<number>; close(): void } {
  const n = conns.length;
  const subs: Array<{ unsubscribe(): void }> = [];
  const slices = Array.from({ length: n }, (_, r) => new Float32Array(bounds[r + 1]! - bounds[r]!));
  let onDone: ((member: number) => void) | undefined;
  for (let r = 0; r < n; r++) {
    let received = 0;
    const nc = conns[r]!;
    subs.push(
      nc.subscribe(`bench.reduce.r${r}`, {
        callback: () => {
          if (++received % n === 0) nc.publish("bench.reduce.params", new Uint8Array(slices[r]!.buffer));
        },
      }),
    );
  }
  for (let i = 0; i < n; i++) {
    let received = 0;
    subs.push(
      conns[i]!.subscribe("bench.reduce.params", {
        callback: () => {
          if (++received % n === 0) onDone?.(i);
        },
      }),
    );
  }
  return {
    step(s) {
      return new Promise((resolve, reject) => {
        const done = new Set<number>();
        const started = performance.now();
        const timer = setTimeout(
          () => reject(new Error(`raw reduce step ${s} did not finish within ${STEP_TIMEOUT_MS} ms`)),
          STEP_TIMEOUT_MS,
        );
        onDone = (member) => {
          done.add(member);
          if (done.size === n) {
            clearTimeout(timer);
            resolve(performance.now() - started);
          }
        };
        for (let i = 0; i < n; i++) {
          const g = grads[i]!;
          for (let r = 0; r < n; r++)
            conns[i]!.publish(
              `bench.reduce.r${r}`,
              new Uint8Array(g.buffer, bounds[r]! * 4, (bounds[r + 1]! - bounds[r]!) * 4),
            );
        }
      });
    },
    close() {
      for (const s of subs) s.unsubscribe();
    },
  };
}

/** Median time of every reducer's sum and optimizer step for one step, run one after another here (as in the measured step). */
function reducerArithmetic(grads: Float32Array[], bounds: number[]): number {
  const spec = resolveJobSpec("mnist");
  const n = grads.length;
  const optimizers = Array.from({ length: n }, () => createOptimizer(spec.optimizer));
  const params = Array.from({ length: n }, (_, r) => new Float32Array(bounds[r + 1]! - bounds[r]!));
  const times: number[] = [];
  for (let rep = 0; rep < 7; rep++) {
    const t = performance.now();
    for (let r = 0; r < n; r++) {
      const sum = new Float32Array(params[r]!.length);
      for (const g of grads) {
        const slice = g.subarray(bounds[r], bounds[r + 1]);
        for (let i = 0; i < sum.length; i++) sum[i]! += slice[i]!;
      }
      optimizers[r]!.step(params[r]!, sum, 1 / (16 * n));
    }
    times.push(performance.now() - t);
  }
  return median(times.slice(2));
}
