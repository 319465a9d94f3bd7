/**
 * A node's metrics as the runtime and the training actors fill them, without a network: the heartbeat
 * reporter, the wire, dead letters, the gradient encoder, an actor's ignored-message counter, and the three
 * duration histograms and the samples counter under the names the actors record them.
 * @module
 */
import { DeadLetters } from "../../runtime/actor/dead-letters.js";
import { LocalInfoReporter } from "../../runtime/daemon/local-info.js";
import type { NodeInfo } from "../../runtime/cluster/types.js";
import { InProcBus, InProcTransport } from "../../runtime/transport/inproc.js";
import { Wire } from "../../runtime/wire.js";
import { SlotLedger } from "../../runtime/daemon/slots.js";
import { EventLoopLag, Metrics } from "../../runtime/metrics.js";
import { silentLogger } from "../../runtime/log.js";
import { GradEncoder } from "../../actors/trainer/grad-codec.js";
import { IgnoredMessages } from "../../actors/ignored.js";
import {
  COMMIT_SECONDS_METRIC,
  RECOVERY_SECONDS_METRIC,
  SAMPLES_METRIC,
  STEP_SECONDS_METRIC,
} from "../../actors/timings.js";

/** A Metrics of node `node` with a value in every series the exercised paths record. */
export function exercisedMetrics(node = "n1"): Metrics {
  const metrics = new Metrics({ node });
  const lag = new EventLoopLag();
  new LocalInfoReporter(metrics).read({
    nodeId: node,
    slots: new SlotLedger(2),
    device: "cpu",
    backend: undefined,
    lag,
    system: undefined,
    peers: () => [peer("n2", "alive"), peer("n3", "dead")],
  });
  lag.stop();
  new Wire(new InProcTransport(new InProcBus()), metrics, silentLogger()).close();
  new DeadLetters(metrics).record({ to: "n1/x", type: "t", reason: "no-actor" });
  new GradEncoder("fp16", metrics).encode(1, new Float32Array(8), {
    addresses: ["n1/r0"],
    bounds: [0, 8],
  });
  new IgnoredMessages("reducer", metrics).note(silentLogger(), "reducer.grad", "stale-step");
  metrics.observe(STEP_SECONDS_METRIC, 0.02);
  metrics.inc(SAMPLES_METRIC, {}, 32);
  metrics.observe(COMMIT_SECONDS_METRIC, 0.004);
  metrics.observe(RECOVERY_SECONDS_METRIC, 0.09, { kind: "death" });
  return metrics;
}

/** A peer as the membership view lists it, last heard from 250 ms ago. */
export function peer(node: string, state: NodeInfo["state"]): NodeInfo {
  const now = Date.now();
  return {
    node,
    inc: "i1",
    state,
    slots: 1,
    freeSlots: 1,
    device: "cpu",
    load: 0,
    lagMs: 0,
    actors: {},
    lastSeen: now - 250,
    joinedAt: now,
  };
}
