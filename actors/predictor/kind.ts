import { z } from "zod";
import type { ActorSystem } from "../../runtime/actor/index.js";
import type { Scheduler } from "../../runtime/clock.js";
import { predictorBehavior } from "./behavior.js";
import { PREDICTOR_KIND } from "./port.js";
import { PREDICTOR_MESSAGES } from "./protocol.js";

/**
 * Registers the predictor kind and its messages on a node's actor system: a client spawns one
 * per run on each node (`flock predict --nats`), with checked arguments; no code travels.
 */
export function registerPredictorKind(system: ActorSystem, nodeId: string, scheduler: Scheduler): void {
  system.registry.register(...PREDICTOR_MESSAGES);
  system.registerKind(PREDICTOR_KIND, {
    args: z.strictObject({
      run: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
      idleMs: z.number().int().min(1_000).max(3_600_000),
    }),
    // A predictor that fails stops; the client hands its ranges to the others.
    supervision: { strategy: "stop" },
    create: (args) => predictorBehavior(args, { nodeId, scheduler, metrics: system.metrics }),
  });
}
