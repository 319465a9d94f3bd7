import type { Behavior, Message } from "../../runtime/actor/index.js";
import { ComputeWorker } from "../compute/worker.js";
import type { JobSpec } from "../job/spec.js";
import type { SliceCopy } from "../reducer/protocol.js";
import type { EvaluatorCommand } from "./protocol.js";

/** What an evaluator is spawned with. */
export interface EvaluatorArgs {
  job: string;
  spec: JobSpec;
}

const ASK_MS = 5_000;

/**
 * An evaluator: scores a parameter version on the held-out split in its own worker thread and
 * reports loss and accuracy to the coordinator. It fetches the version from the reducers, so it
 * needs no history and can be replaced at any time.
 */
export function evaluatorBehavior(args: EvaluatorArgs): Behavior<EvaluatorCommand, undefined> {
  const worker = new ComputeWorker();
  const ready = worker.init({
    model: args.spec.model as never,
    dataset: args.spec.dataset,
    backend: args.spec.backend,
    seed: args.spec.seed,
  });
  ready.catch(() => undefined);
  return {
    async receive(_state, msg, ctx) {
      const info = await ready;
      const { reducers, version, term } = msg;
      let slices: SliceCopy[] = [];
      for (let attempt = 0; attempt < 40; attempt++) {
        slices = await Promise.all(
          reducers.addresses.map((a) =>
            ctx.ref(a).ask<SliceCopy>({ type: "reducer.fetch" }, { timeoutMs: ASK_MS }),
          ),
        );
        if (slices.every((s) => s.version === slices[0].version) && slices[0].version >= version) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      if (!slices.every((s) => s.version === slices[0].version))
        throw new Error(`reducers did not settle on one version for evaluation`);
      const params = new Float32Array(info.paramCount);
      for (const s of slices) params.set(s.data, s.offset);
      await worker.setParams(params, { transfer: true });
      const result = await worker.evaluate();
      ctx.ref(ctx.from!).tell({
        type: "coord.evaluated",
        term,
        version: slices[0].version,
        loss: result.loss,
        accuracy: result.accuracy,
        n: result.n,
      } as Message);
    },
    stopped() {
      void worker.close();
    },
  };
}
