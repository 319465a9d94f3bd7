import {
  ActorExistsError,
  formatAddress,
  type ActorRef,
  type ActorSystem,
} from "../../runtime/actor/index.js";
import type { Logger } from "../../runtime/log.js";
import type { ModelBundle } from "./model.js";
import { PredictorLoaded, PredictorResult, type PredictorCommand } from "./protocol.js";
import type { PredictorPort, RangeRequest } from "./run.js";

/** The actor kind a daemon registers for predictors. */
export const PREDICTOR_KIND = "flock.predictor";

/** The name of a run's predictor on every node. */
export const predictorName = (run: string): string => `predict-${run}`;

/** Timings of the actor port. */
export interface ActorPortOptions {
  /** Deadline of one range ask (the ledger's timeout re-issues before it, or at it). */
  askMs: number;
  /** Deadline of spawning and loading the model on one node. */
  startMs: number;
  /** A predictor stops after this long without a message (a client that died leaves nothing). */
  idleMs: number;
}

/**
 * A {@link PredictorPort} over the client's actor system: a `flock.predictor` spawned on each
 * node, the model sent to it once (`predictor.load`), ranges asked of it. Answers are decoded
 * with their schemas here again (an ask resolves with whatever registered message came back),
 * and the system takes an ask's answer only from the node asked.
 */
export function actorPort(
  client: ActorSystem,
  alive: () => string[],
  run: string,
  bundle: ModelBundle,
  opts: ActorPortOptions,
  log: Logger,
): PredictorPort {
  const refs = new Map<string, ActorRef<PredictorCommand>>();
  return {
    alive,
    async start(node) {
      let ref: ActorRef<PredictorCommand>;
      try {
        ref = await client.spawnRemote<PredictorCommand>(
          node,
          PREDICTOR_KIND,
          predictorName(run),
          { run, idleMs: opts.idleMs },
          { timeoutMs: opts.startMs },
        );
      } catch (error) {
        // This run's predictor is there already: the node was out of the membership for a moment
        // (a missed heartbeat) and is started again. Only this node's own system spawns it.
        if (!(error instanceof ActorExistsError)) throw error;
        ref = client.ref<PredictorCommand>(formatAddress(node, predictorName(run)));
      }
      refs.set(node, ref);
      const reply = PredictorLoaded.safeParse(
        await ref.ask({ type: "predictor.load", run, ...bundle }, { timeoutMs: opts.startMs }),
      );
      if (!reply.success || reply.data.node !== node || reply.data.run !== run)
        throw new Error(`node ${node} answered the model load with something else`);
    },
    async predict(node, req: RangeRequest) {
      const ref = refs.get(node);
      if (!ref) throw new Error(`no predictor on ${node}`);
      const reply = PredictorResult.safeParse(
        await ref.ask({ type: "predictor.range", run, ...req }, { timeoutMs: opts.askMs }),
      );
      if (!reply.success) throw new Error(`node ${node} answered a range with something else`);
      return reply.data;
    },
    async close() {
      await Promise.all(
        [...refs.values()].map((ref) =>
          client
            .stopRemote(ref.address, { timeoutMs: 2_000 })
            .catch((err: Error) => log.debug({ err, address: ref.address }, "predictor stop failed")),
        ),
      );
    },
  };
}
