/**
 * Every path from a transport callback to an actor is total: each malformed envelope becomes a
 * counted bad input (by reason) or a dead letter, a throw in delivery is counted as
 * `internal-error`, and the node keeps answering afterwards. On the in-process bus.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { Packr } from "msgpackr";
import { z } from "zod";
import { ActorSystem, type Behavior } from "../../runtime/actor/index.js";
import { silentLogger } from "../../runtime/log.js";
import { Metrics } from "../../runtime/metrics.js";
import { InProcBus } from "../../runtime/transport/index.js";
import { Wire } from "../../runtime/wire.js";
import { checkEnvelope, MessageDecodeError } from "../../messages/index.js";
import { waitFor } from "../helpers/index.js";

const Ping = z.strictObject({ type: z.literal("demo.ping"), n: z.number().int() });
const Pong = z.strictObject({ type: z.literal("demo.pong"), n: z.number().int() });
const Protocol = z.discriminatedUnion("type", [Ping, Pong]);
type Protocol = z.infer<typeof Protocol>;

const packr = new Packr({ useRecords: false, moreTypes: true, structuredClone: false, mapsAsObjects: true });
const ponger: Behavior<Protocol> = {
  receive(_s, msg, ctx) {
    if (msg.type === "demo.ping") ctx.reply({ type: "demo.pong", n: msg.n + 1 });
  },
};

async function twoNodes(t: TestContext) {
  const bus = new InProcBus(64 * 1024);
  const start = (nodeId: string) =>
    ActorSystem.start({ nodeId, transport: bus.connect(), ownsTransport: true, log: silentLogger() });
  const a = await start("node-a");
  const b = await start("node-b");
  for (const s of [a, b]) s.registry.register(Protocol);
  t.after(async () => {
    await a.stop();
    await b.stop();
  });
  b.spawn(ponger, { name: "ponger" });
  const raw = bus.connect();
  t.after(() => raw.close());
  return { a, b, raw };
}

/** A well-formed ask envelope to node-b's ponger; `patch` overrides or (undefined) removes fields. */
function envelope(patch: Record<string, unknown> = {}): Record<string, unknown> {
  const env: Record<string, unknown> = {
    v: 1,
    type: "demo.ping",
    from: "node-x/$ask",
    to: "node-b/ponger",
    id: "x1",
    deadline: Date.now() + 60_000,
    body: { type: "demo.ping", n: 1 },
  };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

const hostile = { toString: 1, valueOf: "x", constructor: 3 };

/** Malformed envelopes, each with the reason it must be counted under. */
const MALFORMED: Array<[string, unknown, string]> = [
  ["msgpack string", "hello", "bad-envelope"],
  ["msgpack array", [1, 2, 3], "bad-envelope"],
  ["msgpack null", null, "bad-envelope"],
  ["v a map with toString", envelope({ v: hostile }), "bad-envelope"],
  ["v a string", envelope({ v: "1" }), "bad-envelope"],
  ["v 2", envelope({ v: 2 }), "bad-envelope"],
  ["type a map", envelope({ type: hostile }), "bad-envelope"],
  ["type a number", envelope({ type: 7 }), "bad-envelope"],
  ["from without /", envelope({ from: "nodex" }), "bad-envelope"],
  ["from a wildcard node", envelope({ from: "node.>/x" }), "bad-envelope"],
  ["from a map", envelope({ from: hostile }), "bad-envelope"],
  ["to without /", envelope({ to: "node-b" }), "bad-envelope"],
  ["to another node", envelope({ to: "node-c/ponger" }), "bad-envelope"],
  ["to a map", envelope({ to: hostile }), "bad-envelope"],
  ["id a number", envelope({ id: 1 }), "bad-envelope"],
  ["id too long", envelope({ id: "x".repeat(65) }), "bad-envelope"],
  ["corr a map", envelope({ corr: hostile }), "bad-envelope"],
  ["deadline a string", envelope({ deadline: "soon" }), "bad-envelope"],
  ["inc a map", envelope({ inc: hostile }), "bad-envelope"],
  ["no body", envelope({ body: undefined }), "bad-envelope"],
  ["extra toString field", envelope({ toString: "x" }), "bad-envelope"],
  [
    "extra __proto__ field",
    new Map<string, unknown>([...Object.entries(envelope()), ["__proto__", { a: 1 }]]),
    "bad-envelope",
  ],
  ["unknown type", envelope({ type: "evil.exec", body: { type: "evil.exec" } }), "unknown-type"],
  ["body a map with toString", envelope({ body: { type: "demo.ping", n: 1, toString: 1 } }), "schema"],
  ["body of another type", envelope({ body: { type: "demo.pong", n: 1 } }), "schema"],
  ["body huge n", envelope({ body: { type: "demo.ping", n: 1e308 } }), "schema"],
];

test("checkEnvelope refuses every malformed envelope with a MessageDecodeError, never another throw", () => {
  for (const [what, value] of MALFORMED.filter(([, , reason]) => reason === "bad-envelope")) {
    const decoded: unknown = packr.unpack(packr.pack(value));
    if (what.startsWith("to ")) continue; // `to` is the receiver's to check (topics use `*/$topic/...`)
    assert.throws(() => checkEnvelope(decoded), MessageDecodeError, what);
  }
  assert.doesNotThrow(() => checkEnvelope(packr.unpack(packr.pack(envelope()))));
});

test("every malformed envelope is counted by reason, and the node keeps answering", async (t) => {
  const { a, b, raw } = await twoNodes(t);
  // Under the sender the envelopes claim (node-x), so each is counted for its own fault, not as sender-mismatch.
  const subject = b.nodeSubject("node-b", "node-x");
  raw.publish(subject, new Uint8Array([0xd9, 0xff, 1]));
  raw.publish(subject, new Uint8Array([0xc1, 0xba, 0xff, 0xff, 0xff, 0x7f, 1, 2]));
  for (const [, value] of MALFORMED) raw.publish(subject, packr.pack(value));
  const expected: Record<string, number> = { undecodable: 1, "chunk-malformed": 1 };
  for (const [, , reason] of MALFORMED) expected[reason] = (expected[reason] ?? 0) + 1;
  const total = Object.values(expected).reduce((x, y) => x + y, 0);
  await waitFor("every malformed envelope counted", () => b.metrics.total("flock_bad_input_total") >= total);
  const reasons = b.metrics.byLabel("flock_bad_input_total", "reason");
  for (const [reason, n] of Object.entries(expected))
    assert.equal(reasons[reason], n, `${reason}: ${JSON.stringify(reasons)}`);
  assert.equal(reasons["internal-error"], undefined, "nothing threw while delivering");
  const pong = await a.ref<Protocol>("node-b/ponger").ask({ type: "demo.ping", n: 1 }, { timeoutMs: 2000 });
  assert.deepEqual(pong, { type: "demo.pong", n: 2 });
});

test("an ask that fails its schema is answered with a failure to a well-formed sender", async (t) => {
  const { a, b, raw } = await twoNodes(t);
  // node-a's $ask path has no pending ask with this id: the failure reply is a late-reply dead letter there.
  raw.publish(
    b.nodeSubject("node-b", "node-a"),
    packr.pack(envelope({ from: "node-a/$ask", body: { n: 1 } })),
  );
  await waitFor("the failure reply reached node-a", () => (a.deadLetters.byReason()["late-reply"] ?? 0) >= 1);
  assert.equal(b.metrics.byLabel("flock_bad_input_total", "reason").schema, 1);
});

test("a throw while delivering is counted as internal-error and the reader goes on", async (t) => {
  const bus = new InProcBus();
  const metrics = new Metrics();
  const transport = bus.connect();
  const wire = new Wire(transport, metrics, silentLogger());
  t.after(async () => {
    wire.close();
    await transport.close();
  });
  const seen: string[] = [];
  wire.listen("s", (env) => {
    seen.push(env.id);
    if (env.id === "boom") throw new Error("a bug in a handler");
  });
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on("warning", onWarning);
  t.after(() => process.off("warning", onWarning));
  for (const id of ["one", "boom", "two"]) transport.publish("s", packr.pack(envelope({ id })));
  await waitFor("three delivered", () => seen.length === 3);
  assert.deepEqual(seen, ["one", "boom", "two"]);
  assert.equal(metrics.byLabel("flock_bad_input_total", "reason")["internal-error"], 1);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(warnings, [], "the throw never reached the transport");
});

test("only the asked node may answer an ask: a guessed reply from another node is refused", async (t) => {
  const { a, b, raw } = await twoNodes(t);
  const slow: Behavior<Protocol> = {
    async receive(_s, msg, ctx) {
      if (msg.type !== "demo.ping") return;
      await new Promise((r) => setTimeout(r, 50));
      ctx.reply({ type: "demo.pong", n: msg.n + 1 });
    },
  };
  b.spawn(slow, { name: "slow" });
  // Node x sees the ask's id (it shows in every envelope a sends) and answers first, as itself.
  const seen: string[] = [];
  const off = raw.subscribe(b.nodeSubject("node-b", "node-a"), (data) => {
    const env = packr.unpack(data) as { id?: unknown };
    if (typeof env.id === "string") seen.push(env.id);
  });
  t.after(off);
  const reply = a.ref<Protocol>("node-b/slow").ask({ type: "demo.ping", n: 1 }, { timeoutMs: 2000 });
  await waitFor("the ask seen on the wire", () => seen.length > 0);
  raw.publish(
    a.nodeSubject("node-a", "node-x"),
    packr.pack({
      v: 1,
      type: "demo.pong",
      from: "node-x/slow",
      to: "node-a/$ask",
      id: "x9",
      corr: seen[0],
      body: { type: "demo.pong", n: 999 },
    }),
  );
  assert.deepEqual(await reply, { type: "demo.pong", n: 2 }, "the asked node's answer, not the forgery");
  assert.equal(a.metrics.byLabel("flock_bad_input_total", "reason")["sender-mismatch"], 1);
});
