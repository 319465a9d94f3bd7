import assert from "node:assert/strict";
import { test } from "node:test";
import type { z } from "zod";
import { fileURLToPath } from "node:url";
import { ActorSystem, RemoteActorError } from "../../runtime/actor/index.js";
import { NatsTransport } from "../../runtime/transport/index.js";
import { spawnChild } from "../helpers/index.js";
import { startNatsServer } from "../../tools/natsd/index.js";
import { CounterMsg } from "../fixtures/counter-node.js";

const fixture = fileURLToPath(new URL("../fixtures/counter-node.js", import.meta.url));

test(
  "remote spawn, tell and ask across two processes over a real nats-server",
  { timeout: 60_000 },
  async (t) => {
    // One cleanup, in reverse order of start: a client whose server vanished first keeps a nats.js
    // reconnect timer alive after close.
    const nodes: { a?: ActorSystem } = {};
    const server = await startNatsServer({});
    const child = spawnChild(process.execPath, [fixture, server.url, "node-b"], { name: "node-b" });
    t.after(async () => {
      await nodes.a?.stop();
      await child.stop();
      await server.stop();
    });
    await child.waitForLine(/node node-b ready/);
    const a = (nodes.a = await ActorSystem.start({
      nodeId: "node-a",
      transport: await NatsTransport.connect({ servers: server.url }),
      cluster: "xproc",
      ownsTransport: true,
    }));
    a.registry.register(CounterMsg);
    const ref = await a.spawnRemote<z.infer<typeof CounterMsg>>(
      "node-b",
      "counter",
      "c1",
      { start: 1 },
      { timeoutMs: 5000 },
    );
    for (let i = 0; i < 10; i++) ref.tell({ type: "counter.add", by: 1 });
    const reply = await ref.ask<{ type: "counter.value"; value: number; pid: number }>(
      { type: "counter.get" },
      { timeoutMs: 5000 },
    );
    assert.equal(reply.value, 11);
    assert.equal(reply.pid, child.pid, "the actor lives in the other process");
    assert.notEqual(reply.pid, process.pid);
    await assert.rejects(
      a.spawnRemote("node-b", "counter", "c2", { start: "nope" }, { timeoutMs: 5000 }),
      (e: RemoteActorError) => e.code === "bad-input",
    );
  },
);
