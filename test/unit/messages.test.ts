import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import {
  MessageDecodeError,
  MessageRegistry,
  Reassembler,
  createCodec,
  decodeBody,
  isChunk,
  splitFrames,
  JobEvent,
  type Envelope,
} from "../../messages/index.js";

const Grad = z.strictObject({
  type: z.literal("test.grad"),
  step: z.number().int(),
  data: z.instanceof(Float32Array),
});
const Hello = z.strictObject({ type: z.literal("test.hello"), name: z.string() });
const registry = new MessageRegistry().register(z.discriminatedUnion("type", [Grad, Hello]));

function env(body: { type: string }): Envelope {
  return { v: 1, type: body.type, from: "a/x", to: "b/y", id: "1", body };
}

test("codec round-trips plain objects and typed arrays", () => {
  const codec = createCodec();
  const data = new Float32Array([1.5, -2, Math.PI]);
  const back = codec.decode(codec.encode(env({ type: "test.grad", step: 3, data } as never)));
  // decodeBody returns a registered message; the test's own schema names which one.
  const body = Grad.parse(decodeBody(back, registry));
  assert.ok(body.data instanceof Float32Array);
  assert.deepEqual([...body.data], [...data]);
  assert.equal(body.step, 3);
  const ints = codec.decode(
    codec.encode(env({ type: "x", i: new Int32Array([7, -8]), u: new Uint8Array([1]) } as never)),
  );
  assert.ok((ints.body as { i: Int32Array }).i instanceof Int32Array);
  assert.ok((ints.body as { u: Uint8Array }).u instanceof Uint8Array);
});

test("registry knows every member of a union and refuses duplicates", () => {
  assert.deepEqual(registry.types(), ["test.grad", "test.hello"]);
  assert.throws(() => new MessageRegistry().register(z.object({ type: z.string() })), /literal `type`/);
});

test("decode refuses undecodable bytes, bad envelopes, unknown types and schema violations with reasons", () => {
  const codec = createCodec();
  const reasonOf = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof MessageDecodeError);
      return e.reason;
    }
    assert.fail("expected a MessageDecodeError");
  };
  assert.equal(
    reasonOf(() => codec.decode(new Uint8Array([0xc1, 0xc1, 0xc1]))),
    "undecodable",
  );
  assert.equal(
    reasonOf(() => codec.decode(new Uint8Array([0x92, 0x01, 0x02]))),
    "bad-envelope",
  );
  assert.equal(
    reasonOf(() => codec.decode(codec.encode({ ...env({ type: "test.hello" }), extra: 1 } as never))),
    "bad-envelope",
  );
  assert.equal(
    reasonOf(() => decodeBody(env({ type: "nope" }), registry)),
    "unknown-type",
  );
  assert.equal(
    reasonOf(() => decodeBody(env({ type: "test.hello", name: 5 } as never), registry)),
    "schema",
  );
  assert.equal(
    reasonOf(() => decodeBody(env({ type: "test.hello", name: "x", more: 1 } as never), registry)),
    "schema",
  );
  // The union parses by the body's own tag: a body of another member than the envelope names is refused.
  const hello: Envelope = env({ type: "test.hello", name: "x" } as never);
  assert.equal(
    reasonOf(() => decodeBody({ ...hello, type: "test.grad" }, registry)),
    "schema",
  );
});

test("registry accepts one member twice (alone and in its union) but not two schemas for one tag", () => {
  const union = z.discriminatedUnion("type", [Grad, Hello]);
  const r = new MessageRegistry().register(union, Hello).register(z.union([Grad, Hello]));
  assert.deepEqual(r.types(), ["test.grad", "test.hello"]);
  const other = z.strictObject({ type: z.literal("test.hello"), name: z.number() });
  assert.throws(() => r.register(other), /registered twice/);
  assert.throws(() => r.register(z.strictObject({ type: z.literal(["a", "b"]) })), /literal `type`/);
});

test("a 10 MB Float32Array survives chunking into 1 MB frames in any order", () => {
  const codec = createCodec();
  const data = new Float32Array(2_500_000).map((_, i) => i * 0.5);
  const bytes = codec.encode(env({ type: "test.grad", step: 1, data } as never));
  const frames = splitFrames(bytes, 1024 * 1024);
  assert.ok(frames.length >= 10);
  assert.ok(frames.every((f) => f.length <= 1024 * 1024 && isChunk(f)));
  const r = new Reassembler({ maxMessageBytes: 64 << 20, maxBufferedBytes: 64 << 20, timeoutMs: 1000 });
  let whole: Uint8Array | undefined;
  for (const f of [...frames].reverse()) whole = r.push(f) ?? whole;
  assert.ok(whole);
  const body = codec.decode(whole).body as { data: Float32Array };
  assert.equal(body.data.length, data.length);
  assert.equal(body.data[2_499_999], data[2_499_999]);
  assert.equal(r.pending, 0);
  assert.equal(r.bufferedBytes, 0);
});

test("reassembly drops expired, oversized, overflowing and malformed sets", () => {
  let now = 0;
  const r = new Reassembler({
    maxMessageBytes: 5000,
    maxBufferedBytes: 3000,
    timeoutMs: 100,
    now: () => now,
  });
  const frames = splitFrames(new Uint8Array(4000), 1000);
  const [first, second] = frames;
  assert.ok(first && second);
  r.push(first);
  assert.equal(r.pending, 1);
  now = 200;
  assert.equal(r.sweep(), 1);
  assert.equal(r.bufferedBytes, 0);
  assert.throws(
    () => r.push(splitFrames(new Uint8Array(6000), 1000)[0]!),
    (e: MessageDecodeError) => e.reason === "oversized",
  );
  assert.throws(
    () => {
      for (const f of frames.slice(0, 4)) r.push(f);
    },
    (e: MessageDecodeError) => e.reason === "chunk-overflow",
  );
  assert.throws(
    () => r.push(new Uint8Array([0xc1, 1, 2])),
    (e: MessageDecodeError) => e.reason === "chunk-malformed",
  );
  const bad = second.slice();
  new DataView(bad.buffer).setUint32(10, 99, true);
  assert.throws(
    () => r.push(bad),
    (e: MessageDecodeError) => e.reason === "chunk-malformed",
  );
});

test("a diverged loss (NaN, Infinity) still passes as a job event; a loss that is not a number does not", () => {
  const step = { type: "job.step", job: "j", step: 3, epoch: 1, epochs: 2, members: 1, samples: 64 };
  const more = { samplesPerSec: 10, at: 1, t: 1 };
  for (const loss of [NaN, Infinity, -Infinity, 0.5])
    assert.ok(JobEvent.safeParse({ ...step, ...more, loss }).success, `loss ${loss} refused`);
  assert.equal(JobEvent.safeParse({ ...step, ...more, loss: "0.5" }).success, false);
});
