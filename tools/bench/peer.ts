/**
 * The benchmark's receiving process: a raw NATS sink and echo responder on one connection, and a
 * flock node with a sink actor and an echo actor on another. Started by `flock bench`, it prints
 * `bench-peer ready` and exits when its stdin closes (the parent went away) or after 15 minutes.
 * @module
 */
import { ActorSystem, type Behavior } from "../../runtime/actor/index.js";
import { NatsTransport } from "../../runtime/transport/index.js";
import { ACK_EVERY, BenchMessage, benchSubjects, encodeCount, type BenchMessage as Msg } from "./protocol.js";

const [url, cluster, run] = process.argv.slice(2);
if (!url || !cluster || !run) {
  console.error("usage: peer.js <nats-url> <cluster> <run-id>");
  process.exit(2);
}
const hardStop = setTimeout(() => process.exit(3), 15 * 60_000);
hardStop.unref();

const subjects = benchSubjects(run);
const control = await NatsTransport.connect({ servers: url, name: "bench-peer-raw" });
const nc = control.connection;

let rawCount = 0;
nc.subscribe(subjects.rawData, {
  callback: () => {
    if (++rawCount % ACK_EVERY === 0) nc.publish(subjects.rawAck, encodeCount(rawCount));
  },
});
nc.subscribe(subjects.rawEcho, { callback: (_err, msg) => msg.respond(msg.data) });

const transport = await NatsTransport.connect({ servers: url, name: "bench-peer-flock" });
const system = await ActorSystem.start({ nodeId: "bench-peer", transport, cluster, ownsTransport: true });
system.registry.register(BenchMessage);

let flockCount = 0;
const sink: Behavior<Msg, undefined> = {
  receive() {
    if (++flockCount % ACK_EVERY === 0) nc.publish(subjects.flockAck, encodeCount(flockCount));
  },
};
const echo: Behavior<Msg, undefined> = {
  receive(_s, msg, ctx) {
    if (msg.type === "bench.ping") ctx.reply({ type: "bench.pong", seq: msg.seq });
  },
};
system.spawn(sink, { name: "sink" });
system.spawn(echo, { name: "echo" });
await nc.flush();
await transport.flush();
console.log("bench-peer ready");

async function shutdown(): Promise<void> {
  await system.stop().catch(() => undefined);
  await control.close().catch(() => undefined);
  process.exit(0);
}
process.stdin.on("end", () => void shutdown());
process.stdin.on("error", () => void shutdown());
process.stdin.resume();
process.on("SIGTERM", () => void shutdown());
