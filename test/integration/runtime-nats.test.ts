import { after, before } from "node:test";
import { startNatsServer, type NatsServerHandle } from "../../tools/natsd/index.js";
import { NatsTransport } from "../../runtime/transport/index.js";
import { runtimeContract } from "../contract/runtime.js";

// One real nats-server for this file, with a 1 MiB max_payload so big messages must go in chunks.
let server: NatsServerHandle;
before(async () => {
  server = await startNatsServer({ jetstream: true, maxPayload: 1024 * 1024 });
});
after(async () => {
  await server?.stop();
});

runtimeContract("nats", async () => NatsTransport.connect({ servers: server.url, name: "contract" }), {
  maxPayload: 1024 * 1024,
});
