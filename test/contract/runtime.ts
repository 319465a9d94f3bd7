/**
 * The runtime's contract, run against every transport (in-process bus and NATS): the same calls
 * must behave the same whichever carries them.
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { z } from "zod";
import { createCodec, splitFrames } from "../../messages/index.js";
import {
  ActorExistsError,
  ActorNotFoundError,
  ActorSystem,
  AskTimeoutError,
  RemoteActorError,
  type Behavior,
} from "../../runtime/actor/index.js";
import type { Transport } from "../../runtime/transport/index.js";
import { waitFor } from "../helpers/index.js";

/** Makes a fresh transport connected to the same bus/server each call. */
export type TransportFactory = (t: TestContext) => Promise<Transport>;

const Ping = z.strictObject({ type: z.literal("demo.ping"), n: z.number().int() });
const Pong = z.strictObject({ type: z.literal("demo.pong"), n: z.number().int(), by: z.string() });
const Add = z.strictObject({ type: z.literal("demo.add"), by: z.number() });
const Get = z.strictObject({ type: z.literal("demo.get") });
const Value = z.strictObject({ type: z.literal("demo.value"), value: z.number() });
const Blob = z.strictObject({ type: z.literal("demo.blob"), data: z.instanceof(Float32Array) });
const Sum = z.strictObject({ type: z.literal("demo.sum"), sum: z.number(), length: z.number() });
const Protocol = z.discriminatedUnion("type", [Ping, Pong, Add, Get, Value, Blob, Sum]);
type Protocol = z.infer<typeof Protocol>;

const ponger: Behavior<Protocol> = {
  receive(_s, msg, ctx) {
    if (msg.type === "demo.ping") ctx.reply({ type: "demo.pong", n: msg.n + 1, by: ctx.nodeId });
    if (msg.type === "demo.blob")
      ctx.reply({ type: "demo.sum", sum: msg.data.reduce((a, b) => a + b, 0), length: msg.data.length });
  },
};

const counter: Behavior<Protocol, number> = {
  init: () => 0,
  receive(state, msg, ctx) {
    if (msg.type === "demo.add") return state + msg.by;
    if (msg.type === "demo.get") ctx.reply({ type: "demo.value", value: state });
    return state;
  },
};

async function node(
  t: TestContext,
  make: TransportFactory,
  nodeId: string,
  cluster = "contract",
  wireLimits?: { chunkTimeoutMs: number },
): Promise<ActorSystem> {
  const transport = await make(t);
  const system = await ActorSystem.start({
    nodeId,
    transport,
    cluster,
    ownsTransport: true,
    wireLimits,
    checkLocalSends: true,
  });
  system.registry.register(Protocol);
  system.registerKind("counter", {
    args: z.strictObject({ start: z.number() }),
    create: ({ start }) => ({ ...counter, init: () => start }),
  });
  t.after(() => system.stop());
  return system;
}

/** Registers the contract tests for one transport. */
export function runtimeContract(
  name: string,
  make: TransportFactory,
  opts: { maxPayload?: number } = {},
): void {
  test(`${name}: tell and ask reach local and remote actors alike`, async (t) => {
    const a = await node(t, make, "node-a");
    const b = await node(t, make, "node-b");
    b.spawn(ponger, { name: "ponger" });
    a.spawn(ponger, { name: "ponger" });
    const remote = a.ref<Protocol>("node-b/ponger");
    const local = a.ref<Protocol>("node-a/ponger");
    assert.deepEqual(await remote.ask({ type: "demo.ping", n: 1 }, { timeoutMs: 2000 }), {
      type: "demo.pong",
      n: 2,
      by: "node-b",
    });
    assert.deepEqual(await local.ask({ type: "demo.ping", n: 5 }, { timeoutMs: 2000 }), {
      type: "demo.pong",
      n: 6,
      by: "node-a",
    });
    const c = b.spawn(counter, { name: "counter" });
    for (let i = 0; i < 100; i++) a.ref<Protocol>(c.address).tell({ type: "demo.add", by: 1 });
    const v = await a
      .ref<Protocol>(c.address)
      .ask<{ type: "demo.value"; value: number }>({ type: "demo.get" }, { timeoutMs: 2000 });
    assert.equal(v.value, 100, "tells from one sender arrive in order, before the later ask");
  });

  test(`${name}: an actor's reply to a tell goes to the sender's mailbox`, async (t) => {
    const a = await node(t, make, "node-a");
    const b = await node(t, make, "node-b");
    b.spawn(ponger, { name: "ponger" });
    const got: number[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    a.spawn<Protocol, undefined>(
      {
        receive: (_s, m) => {
          if (m.type === "demo.pong") {
            got.push(m.n);
            if (got.length === 3) done();
          }
        },
      },
      { name: "sink" },
    );
    for (let n = 0; n < 3; n++)
      a.ref<Protocol>("node-b/ponger").tell({ type: "demo.ping", n }, "node-a/sink");
    await finished;
    assert.deepEqual(got, [1, 2, 3]);
  });

  test(`${name}: ask times out with a typed error, and an unknown actor rejects at once`, async (t) => {
    const a = await node(t, make, "node-a");
    const b = await node(t, make, "node-b");
    b.spawn<Protocol, undefined>({ receive: () => undefined }, { name: "silent" });
    await assert.rejects(
      a.ref<Protocol>("node-b/silent").ask({ type: "demo.get" }, { timeoutMs: 150 }),
      AskTimeoutError,
    );
    const started = Date.now();
    await assert.rejects(
      a.ref<Protocol>("node-b/nobody").ask({ type: "demo.get" }, { timeoutMs: 5000 }),
      ActorNotFoundError,
    );
    assert.ok(Date.now() - started < 2000, "a missing actor is reported, not waited for");
    await assert.rejects(
      a.ref<Protocol>("node-b/nobody").ask({ type: "demo.get" }, { timeoutMs: 0 }),
      RangeError,
    );
    await waitUntil(
      () => b.deadLetters.byReason()["no-such-actor"] === 1,
      "dead letter for the missing actor",
    );
  });

  test(`${name}: remote spawn by registered kind, with its args checked`, async (t) => {
    const a = await node(t, make, "node-a");
    await node(t, make, "node-b");
    const ref = await a.spawnRemote<Protocol>("node-b", "counter", "c1", { start: 40 }, { timeoutMs: 2000 });
    assert.equal(ref.address, "node-b/c1");
    ref.tell({ type: "demo.add", by: 2 });
    assert.equal(
      (await ref.ask<{ type: "demo.value"; value: number }>({ type: "demo.get" }, { timeoutMs: 2000 })).value,
      42,
    );
    await assert.rejects(
      a.spawnRemote("node-b", "no-such-kind", "x", {}, { timeoutMs: 2000 }),
      (e: RemoteActorError) => e.code === "unknown-kind" && /counter/.test(e.message),
    );
    await assert.rejects(
      a.spawnRemote("node-b", "counter", "c2", { start: "x" }, { timeoutMs: 2000 }),
      (e: RemoteActorError) => e.code === "bad-input",
    );
    await assert.rejects(
      a.spawnRemote("node-b", "counter", "c1", { start: 1 }, { timeoutMs: 2000 }),
      (e: Error) => e instanceof ActorExistsError && /node-b\/c1/.test(e.message),
    );
    await a.stopRemote("node-b/c1", { timeoutMs: 2000 });
    await assert.rejects(ref.ask({ type: "demo.get" }, { timeoutMs: 2000 }), ActorNotFoundError);
  });

  test(`${name}: large typed arrays are chunked and reassembled`, async (t) => {
    const a = await node(t, make, "node-a");
    const b = await node(t, make, "node-b");
    b.spawn(ponger, { name: "ponger" });
    const n = opts.maxPayload ? Math.ceil((opts.maxPayload * 10) / 4) : 2_500_000;
    const data = new Float32Array(n).fill(1);
    const reply = await a
      .ref<Protocol>("node-b/ponger")
      .ask<{ type: "demo.sum"; sum: number; length: number }>(
        { type: "demo.blob", data },
        { timeoutMs: 10_000 },
      );
    assert.equal(reply.length, n);
    assert.equal(reply.sum, n);
    assert.ok(a.metrics.total("flock_chunks_out_total") >= 10, "the payload went in chunks");
  });

  test(`${name}: every class of bad input is counted and the node keeps answering`, async (t) => {
    const a = await node(t, make, "node-a");
    const b = await node(t, make, "node-b", "contract", { chunkTimeoutMs: 300 });
    b.spawn(ponger, { name: "ponger" });
    const raw = await make(t);
    t.after(() => raw.close());
    // Sent as node-x, the `from` of every envelope below (a subject of another sender is refused first).
    const subject = b.nodeSubject("node-b", "node-x");
    // A truncated chunk set: two frames of a three-frame message; the third never comes.
    const [first, second] = splitFrames(new Uint8Array(3000).fill(7), 1100);
    assert.ok(first && second, "three frames expected");
    raw.publish(subject, first);
    raw.publish(subject, second);
    const codec = createCodec();
    const envelope = (body: unknown, type = "demo.ping") => ({
      v: 1,
      type,
      from: "node-x/$anon",
      to: "node-b/ponger",
      id: "x1",
      body,
    });
    raw.publish(subject, new Uint8Array([0xd9, 0xff, 1]));
    raw.publish(subject, codec.encode({ nonsense: true } as never));
    raw.publish(
      subject,
      codec.encode(envelope({ type: "evil.exec", code: "process.exit(1)" }, "evil.exec") as never),
    );
    raw.publish(subject, codec.encode(envelope({ type: "demo.ping", n: "one" }) as never));
    raw.publish(
      subject,
      new Uint8Array([0xc1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 9]),
    );
    await raw.flush();
    await waitUntil(() => b.metrics.total("flock_bad_input_total") >= 6, "six bad inputs counted");
    const reasons = b.metrics.byLabel("flock_bad_input_total", "reason");
    for (const reason of [
      "undecodable",
      "bad-envelope",
      "unknown-type",
      "schema",
      "oversized",
      "chunk-expired",
    ])
      assert.equal(reasons[reason], 1, `${reason}: ${JSON.stringify(reasons)}`);
    assert.deepEqual(
      await a.ref<Protocol>("node-b/ponger").ask({ type: "demo.ping", n: 1 }, { timeoutMs: 2000 }),
      { type: "demo.pong", n: 2, by: "node-b" },
    );
  });

  test(`${name}: a topic fans one publish out to subscribed actors on every node`, async (t) => {
    const a = await node(t, make, "node-a");
    const b = await node(t, make, "node-b");
    const c = await node(t, make, "node-c");
    const seen: string[] = [];
    const sink = (sys: ActorSystem) =>
      sys.spawn<Protocol, undefined>(
        {
          receive: (_s, m) => {
            if (m.type === "demo.add") seen.push(`${sys.nodeId}:${m.by}`);
          },
        },
        { name: "sink" },
      );
    const offB = b.subscribeTopic("job.j1.params", sink(b));
    c.subscribeTopic("job.j1.params", sink(c));
    await Promise.all([b.wire.transport.flush(), c.wire.transport.flush()]);
    a.publish("job.j1.params", { type: "demo.add", by: 1 });
    await waitUntil(() => seen.length === 2, "both subscribers got the publish");
    assert.deepEqual(seen.sort(), ["node-b:1", "node-c:1"]);
    offB();
    await b.wire.transport.flush();
    a.publish("job.j1.params", { type: "demo.add", by: 2 });
    await waitUntil(() => seen.length === 3, "the remaining subscriber got the second publish");
    assert.equal(seen[2], "node-c:2");
  });

  test(`${name}: two clusters on one bus never see each other`, async (t) => {
    const a = await node(t, make, "node-a", "blue");
    const b = await node(t, make, "node-b", "green");
    b.spawn(ponger, { name: "ponger" });
    await assert.rejects(
      a.ref<Protocol>("node-b/ponger").ask({ type: "demo.ping", n: 1 }, { timeoutMs: 200 }),
      AskTimeoutError,
    );
  });
}

/** A named, bounded poll: {@link waitFor} (the one poll of the tests) with this file's argument order. */
export async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  await waitFor(what, predicate, { timeoutMs, intervalMs: 10 });
}
