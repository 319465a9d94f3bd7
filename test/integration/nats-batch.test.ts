import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { z } from "zod";
import { ActorSystem, type Behavior } from "../../runtime/actor/index.js";
import { decodeBatch, encodeBatch, BATCH_HEADER_BYTES } from "../../runtime/transport/batch.js";
import { NatsTransport } from "../../runtime/transport/index.js";
import { waitUntil } from "../contract/runtime.js";
import { startNatsServer, type NatsServerHandle } from "../../tools/natsd/index.js";

// The NATS transport packs frames published in one burst to one subject into one NATS message.

const Seq = z.strictObject({ type: z.literal("batch.seq"), n: z.number().int() });
// One server for the file, stopped after every test's connections are closed.
let server: NatsServerHandle;
before(async () => {
  server = await startNatsServer({ jetstream: false });
});
after(() => server?.stop());

const frames = (n: number) => Array.from({ length: n }, (_, i) => new Uint8Array(i % 7).fill(i));

test("a batch splits back into its frames; a malformed one is refused whole", () => {
  const fs = frames(10);
  const bytes = BATCH_HEADER_BYTES + fs.reduce((a, f) => a + 4 + f.length, 0);
  const batch = encodeBatch(fs, bytes);
  assert.deepEqual(decodeBatch(batch), fs);
  assert.equal(decodeBatch(batch.subarray(0, batch.length - 1)), undefined, "truncated");
  const lying = batch.slice();
  new DataView(lying.buffer).setUint32(2, 1e9, true);
  assert.equal(decodeBatch(lying), undefined, "count larger than the payload");
});

test("a burst of tells arrives in order; interleaved subjects keep the publish order", async (t) => {
  const a = await ActorSystem.start({
    nodeId: "a",
    transport: await NatsTransport.connect({ servers: server.url }),
    cluster: "batch",
    ownsTransport: true,
  });
  const b = await ActorSystem.start({
    nodeId: "b",
    transport: await NatsTransport.connect({ servers: server.url }),
    cluster: "batch",
    ownsTransport: true,
  });
  t.after(() => Promise.all([a.stop(), b.stop()]));
  for (const s of [a, b]) s.registry.register(Seq);
  const seen: number[] = [];
  const sink: Behavior<z.infer<typeof Seq>, undefined> = { receive: (_s, m) => void seen.push(m.n) };
  b.spawn(sink, { name: "sink" });
  const ref = a.ref("b/sink");
  for (let i = 0; i < 5000; i++) ref.tell({ type: "batch.seq", n: i } as z.infer<typeof Seq>);
  await waitUntil(() => seen.length === 5000, "5000 tells delivered", 10_000);
  assert.deepEqual(
    seen,
    Array.from({ length: 5000 }, (_, i) => i),
  );
  const inMsgs = (b.wire.transport as NatsTransport).connection.stats().inMsgs;
  assert.ok(inMsgs < 500, `5000 small tells in one burst took ${inMsgs} NATS messages`);

  // One wildcard subscriber on another connection sees x and y publishes in the order they were made.
  const pub = await NatsTransport.connect({ servers: server.url });
  const sub = await NatsTransport.connect({ servers: server.url });
  t.after(() => Promise.all([pub.close(), sub.close()]));
  const order: string[] = [];
  sub.subscribe("batch.raw.*", (data, subject) => order.push(`${subject.slice(-1)}${data[0]}`));
  await sub.flush();
  const expected: string[] = [];
  for (let i = 0; i < 200; i++) {
    const s = i % 3 === 0 ? "x" : "y";
    pub.publish(`batch.raw.${s}`, new Uint8Array([i]));
    expected.push(`${s}${i}`);
  }
  await pub.flush();
  await waitUntil(() => order.length === 200, "200 raw frames delivered", 10_000);
  assert.deepEqual(order, expected);
});

test("a malformed batch is counted as bad input and the node keeps answering", async (t) => {
  const b = await ActorSystem.start({
    nodeId: "b",
    transport: await NatsTransport.connect({ servers: server.url }),
    cluster: "batch",
    ownsTransport: true,
  });
  const raw = await NatsTransport.connect({ servers: server.url });
  t.after(() => Promise.all([b.stop(), raw.close()]));
  const batch = encodeBatch([new Uint8Array([1, 2, 3])], BATCH_HEADER_BYTES + 7);
  raw.connection.publish(b.nodeSubject("b"), batch.subarray(0, batch.length - 1));
  await raw.flush();
  await waitUntil(() => b.metrics.total("flock_bad_input_total") >= 1, "bad input counted", 10_000);
  const pong = await raw.connection
    .request(b.nodeSubject("b"), new Uint8Array(0), { timeout: 100 })
    .catch(() => "no reply");
  assert.equal(pong, "no reply", "an empty frame is bad input too, not an answer");
  assert.ok(b.metrics.total("flock_bad_input_total") >= 2);
});
