/**
 * Two actor systems ("nodes") that talk through NATS — or, without --nats, through the in-process
 * bus with the same codec path. A counter is spawned on node-b *from node-a* by its registered kind
 * (no code travels), then told and asked across the nodes.
 *
 *   node dist/examples/ping-pong.js                         # in-process bus
 *   node dist/examples/ping-pong.js --nats nats://127.0.0.1:4222
 */
import { z } from "zod";
import { ActorSystem, type Behavior } from "../runtime/actor/index.js";
import { InProcBus, NatsTransport, type Transport } from "../runtime/transport/index.js";

// 1. A protocol: zod schemas are the wire check and the TypeScript type at once.
const Add = z.strictObject({ type: z.literal("counter.add"), by: z.number() });
const Get = z.strictObject({ type: z.literal("counter.get") });
const Value = z.strictObject({ type: z.literal("counter.value"), value: z.number() });
const CounterMsg = z.discriminatedUnion("type", [Add, Get, Value]);
type CounterMsg = z.infer<typeof CounterMsg>;

// 2. A behaviour: state in, state out; replies go to whoever asked.
const counter = (start: number): Behavior<CounterMsg, number> => ({
  init: () => start,
  receive(total, msg, ctx) {
    if (msg.type === "counter.add") return total + msg.by;
    if (msg.type === "counter.get") ctx.reply({ type: "counter.value", value: total });
  },
});

const natsUrl = process.argv.includes("--nats")
  ? process.argv.at(process.argv.indexOf("--nats") + 1)
  : undefined;
const bus = new InProcBus();
const connect = async (): Promise<Transport> =>
  natsUrl ? NatsTransport.connect({ servers: natsUrl }) : bus.connect();

// 3. Two nodes. Each registers the protocol; node-b also registers the kind others may spawn on it.
const a = await ActorSystem.start({ nodeId: "node-a", transport: await connect(), ownsTransport: true });
const b = await ActorSystem.start({ nodeId: "node-b", transport: await connect(), ownsTransport: true });
for (const node of [a, b]) node.registry.register(CounterMsg);
b.registerKind("counter", {
  args: z.strictObject({ start: z.number() }),
  create: ({ start }) => counter(start),
});

// 4. Spawn remotely, then tell and ask: the same calls as for a local actor.
const remote = await a.spawnRemote<CounterMsg>("node-b", "counter", "c1", { start: 40 }, { timeoutMs: 2000 });
remote.tell({ type: "counter.add", by: 2 });
const reply = await remote.ask<z.infer<typeof Value>>({ type: "counter.get" }, { timeoutMs: 2000 });
console.log(
  `${remote.address} says ${reply.value} (via ${natsUrl ? `NATS at ${natsUrl}` : "the in-process bus"})`,
);

await a.stop();
await b.stop();
