import type { ActorContext, Behavior } from "../../runtime/actor/index.js";
import { systemScheduler, type Scheduler } from "../../runtime/clock.js";
import type { Metrics } from "../../runtime/metrics.js";
import { ComputeWorker } from "../compute/worker.js";
import { fetchStoredSources, type DataAccess } from "../compute/dataset-store-cache.js";
import type { CoordinatorCommand } from "../coordinator/protocol.js";
import { IgnoredMessages } from "../ignored.js";
import { termRefused, type TermCheck } from "../term-guard.js";
import type { JobSpec } from "../job/spec.js";
import type { ReducerCommand, SliceCopy } from "../reducer/protocol.js";
import { agreedVersion } from "../trainer/versions.js";
import type { EvaluatorCommand } from "./protocol.js";
import type { BlobStore } from "../../runtime/store/types.js";
import { encodeStoredModel, modelBlobName } from "../job/model-store.js";

/** What an evaluator is spawned with. */
export interface EvaluatorArgs {
  job: string;
  spec: JobSpec;
}

/** Services of the node that hosts the evaluator. */
export interface EvaluatorHost {
  /** Timers and the clock (default {@link systemScheduler}). */
  scheduler?: Scheduler;
  /** Where ignored messages are counted. */
  metrics?: Metrics;
  /** Checks coordinator terms against the job's lease (see `term-guard.ts`). */
  terms?: TermCheck;
  /** The object store where the latest scored model is kept (`job/model-store.ts`); none: not kept. */
  blobs?: () => Promise<BlobStore>;
  /** The cluster's stored datasets (a `flock://` source), fetched into this node's cache. */
  data?: DataAccess;
}

const ASK_MS = 5_000;
/** Rounds of asking the reducers until they agree on one version, and the pause between rounds. */
const SETTLE_ROUNDS = 40;
const SETTLE_PAUSE_MS = 25;

/**
 * An evaluator: scores a parameter version on the held-out split in its own worker thread and
 * reports loss and accuracy to the coordinator. It fetches the version from the reducers, so it
 * needs no history and can be replaced at any time.
 */
export function evaluatorBehavior(
  args: EvaluatorArgs,
  host: EvaluatorHost = {},
): Behavior<EvaluatorCommand, undefined> {
  const scheduler = host.scheduler ?? systemScheduler;
  const ignored = new IgnoredMessages("evaluator", host.metrics);
  const worker = new ComputeWorker();
  const ready = fetchStoredSources(args.spec.dataset, host.data).then((stored) =>
    worker.init({
      model: args.spec.model,
      dataset: args.spec.dataset,
      backend: args.spec.backend,
      seed: args.spec.seed,
      task: args.spec.task,
      mlm: args.spec.mlm,
      stored,
    }),
  );
  ready.catch(() => undefined);

  /** Fetches the version the reducers agree on, scores it and reports it; throws when it cannot. */
  async function evaluate(
    msg: EvaluatorCommand,
    replyTo: string,
    ctx: ActorContext<EvaluatorCommand>,
  ): Promise<void> {
    const info = await ready;
    const { reducers, version, term } = msg;
    let slices: SliceCopy[] = [];
    let agreed: ReturnType<typeof agreedVersion>;
    for (let round = 0; round < SETTLE_ROUNDS; round++) {
      slices = await Promise.all(
        reducers.addresses.map((a) =>
          ctx.ref<ReducerCommand>(a).ask<SliceCopy>({ type: "reducer.fetch" }, { timeoutMs: ASK_MS }),
        ),
      );
      agreed = agreedVersion(slices, version, info.paramCount);
      if (agreed) break;
      await scheduler.sleep(SETTLE_PAUSE_MS);
    }
    // After the last round, any version all reducers agree on will do (an older one too).
    agreed ??= agreedVersion(slices, -1, info.paramCount);
    if (!agreed) throw new Error(`reducers did not settle on one version for evaluation`);
    const params = agreed.params;
    await worker.setParams(params.slice(), { transfer: true });
    const result = await worker.evaluate();
    // Stored before the score is reported: the final score completes the job, and the model
    // exported after it must be the one that was scored.
    await keepModel(agreed.version, result, params, info.weights, ctx);
    ctx.ref<CoordinatorCommand>(replyTo).tell({
      type: "coord.evaluated",
      term,
      version: agreed.version,
      loss: result.loss,
      accuracy: result.accuracy,
      n: result.n,
    });
  }

  /** Writes the scored version to the object store; a failure is logged, the score still goes out. */
  async function keepModel(
    step: number,
    result: { loss: number; accuracy: number },
    params: Float32Array,
    weights: { name: string; shape: number[] }[],
    ctx: ActorContext<EvaluatorCommand>,
  ): Promise<void> {
    if (!host.blobs) return;
    try {
      const blob = encodeStoredModel({
        job: args.job,
        step,
        loss: result.loss,
        accuracy: result.accuracy,
        params,
        weights,
      });
      await (await host.blobs()).put(modelBlobName(args.job), blob);
    } catch (error) {
      ctx.log.warn({ err: error, job: args.job, step }, "evaluator: could not keep the scored model");
    }
  }

  return {
    async receive(_state, msg, ctx) {
      if (msg.type !== "evaluator.eval") {
        const unreachable: never = msg.type;
        return ignored.unhandled(ctx, String(unreachable), "unknown-type");
      }
      const replyTo = ctx.from;
      if (!replyTo) return ignored.note(ctx.log, msg.type, "no-reply-address");
      if (await termRefused(host.terms, ctx, ignored, msg)) return;
      try {
        await evaluate(msg, replyTo, ctx);
      } catch (error) {
        // The reducers unreachable, or an address that does not parse: the coordinator asks again
        // (its finish timer); a throw would cost restarts, and a flood of them the evaluator.
        ignored.note(ctx.log, msg.type, "evaluation-failed", error instanceof Error ? error.message : "?");
      }
    },
    stopped() {
      void worker.close();
    },
  };
}
