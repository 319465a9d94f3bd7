import type { Failure } from "../../messages/index.js";
import type { ActorContext, Behavior } from "../../runtime/actor/index.js";
import { systemScheduler, type Scheduler, type Timer } from "../../runtime/clock.js";
import type { Metrics } from "../../runtime/metrics.js";
import { IgnoredMessages } from "../ignored.js";
import { PredictorWorker, type LoadedLayout } from "./worker.js";
import type { PredictorCommand, PredictorLoaded, PredictorResult } from "./protocol.js";

type Load = Extract<PredictorCommand, { type: "predictor.load" }>;
type Range = Extract<PredictorCommand, { type: "predictor.range" }>;

/** What a predictor is spawned with: its run, and how long it lives without a message. */
export interface PredictorArgs {
  run: string;
  idleMs: number;
}

/** Services of the node that hosts a predictor. */
export interface PredictorHost {
  nodeId: string;
  scheduler?: Scheduler;
  metrics?: Metrics;
}

/**
 * A predictor of one run: loads the model the client sends (`predictor.load`) into its own thread
 * (`worker.ts`), then answers each
 * `predictor.range` ask with the range's class probabilities. It holds no ledger — the client
 * does, and may send a range to several predictors — and stops itself after `idleMs` without a
 * message, so a client that died leaves no model in a daemon's memory. Wire input is hostile:
 * a message it cannot serve is counted and answered with a failure, never thrown on.
 */
export function predictorBehavior(
  args: PredictorArgs,
  host: PredictorHost,
): Behavior<PredictorCommand, undefined> {
  const scheduler = host.scheduler ?? systemScheduler;
  const ignored = new IgnoredMessages("predictor", host.metrics);
  const worker = new PredictorWorker();
  let model: LoadedLayout | undefined;
  let lastSeen = scheduler.now();
  let idleTimer: Timer | undefined;

  /** Counts a request it cannot serve and answers it with a failure that says why. */
  function refuse(ctx: ActorContext<PredictorCommand>, type: string, reason: string, detail: string): void {
    ignored.note(ctx.log, type, reason, detail);
    if (ctx.isAsk)
      ctx.reply<Failure>({
        type: "sys.failure",
        code: "bad-input",
        message: `${reason}: ${detail}`.slice(0, 500),
      });
  }

  async function onLoad(msg: Load, ctx: ActorContext<PredictorCommand>): Promise<void> {
    model = undefined;
    try {
      const { topology, weightSpecs, weights, info } = msg;
      model = await worker.load({ topology, weightSpecs, weights, info }, `run ${msg.run}`);
    } catch (error) {
      return refuse(ctx, msg.type, "model-unloadable", (error as Error).message);
    }
    ctx.reply<PredictorLoaded>({
      type: "predictor.loaded",
      run: args.run,
      node: host.nodeId,
      backend: "cpu",
    });
  }

  async function onRange(msg: Range, ctx: ActorContext<PredictorCommand>): Promise<void> {
    if (!model) return ignored.unhandled(ctx, msg.type, "no-model");
    if (msg.x.length !== msg.n * model.width || model.text !== (msg.text !== undefined))
      return ignored.unhandled(ctx, msg.type, "shape-mismatch");
    // The request holds the range alone, read from index 0; batches stay aligned with the
    // client's because ranges start at multiples of the batch.
    const probs = await worker.predict(msg.n, msg.x, msg.text);
    ctx.reply<PredictorResult>({
      type: "predictor.result",
      run: args.run,
      range: msg.range,
      attempt: msg.attempt,
      node: host.nodeId,
      probs,
    });
  }

  return {
    init(ctx) {
      idleTimer = scheduler.every(Math.max(1, Math.floor(args.idleMs / 4)), () =>
        ctx.self.tell({ type: "predictor.idle" }),
      );
    },
    async receive(_state, msg, ctx) {
      if (msg.type === "predictor.idle") {
        if (scheduler.now() - lastSeen < args.idleMs) return;
        ctx.log.info({ run: args.run }, "predictor idle: stopping");
        return ctx.stop();
      }
      lastSeen = scheduler.now();
      if (msg.run !== args.run) return ignored.unhandled(ctx, msg.type, "other-run");
      if (!ctx.isAsk) return ignored.note(ctx.log, msg.type, "not-an-ask");
      try {
        if (msg.type === "predictor.load") return await onLoad(msg, ctx);
        return await onRange(msg, ctx);
      } catch (error) {
        // A model call that fails on this input: the client hands the range out again.
        return refuse(ctx, msg.type, "predict-failed", (error as Error).message);
      }
    },
    stopped() {
      idleTimer?.cancel();
      void worker.close();
    },
  };
}
