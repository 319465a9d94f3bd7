/**
 * An actor system on its own in-process bus for unit tests, recording its lifecycle events and
 * stopped after the test. Local sends are checked against the registered schemas
 * (`checkLocalSends`), so a test sending what its protocol does not declare fails loudly.
 * @module
 */
import type { TestContext } from "node:test";
import type { MessageSchema } from "../../messages/index.js";
import { ActorSystem, type ActorEvent } from "../../runtime/actor/index.js";
import { InProcBus } from "../../runtime/transport/index.js";

/** Starts node `n1` on a fresh bus with the given protocols registered; its events are collected in `events`. */
export async function testSystem(
  t: TestContext,
  ...protocols: MessageSchema[]
): Promise<{ sys: ActorSystem; events: ActorEvent[] }> {
  const sys = await ActorSystem.start({
    nodeId: "n1",
    transport: new InProcBus().connect(),
    ownsTransport: true,
    checkLocalSends: true,
  });
  sys.registry.register(...protocols);
  const events: ActorEvent[] = [];
  sys.onActorEvent((e) => events.push(e));
  t.after(() => sys.stop());
  return { sys, events };
}
