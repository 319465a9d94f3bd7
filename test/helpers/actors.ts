/**
 * An actor system on its own in-process bus for unit tests, recording its lifecycle events and
 * stopped after the test.
 * @module
 */
import type { TestContext } from "node:test";
import { ActorSystem, type ActorEvent } from "../../runtime/actor/index.js";
import { InProcBus } from "../../runtime/transport/index.js";

/** Starts node `n1` on a fresh bus; its events are collected in `events`. */
export async function testSystem(t: TestContext): Promise<{ sys: ActorSystem; events: ActorEvent[] }> {
  const sys = await ActorSystem.start({
    nodeId: "n1",
    transport: new InProcBus().connect(),
    ownsTransport: true,
  });
  const events: ActorEvent[] = [];
  sys.onActorEvent((e) => events.push(e));
  t.after(() => sys.stop());
  return { sys, events };
}
