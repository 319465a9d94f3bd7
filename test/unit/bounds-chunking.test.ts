import assert from "node:assert/strict";
import { test } from "node:test";
import { MessageDecodeError } from "../../messages/errors.js";
import {
  CHUNK_HEADER_BYTES,
  PART_OVERHEAD_BYTES,
  Reassembler,
  SET_OVERHEAD_BYTES,
  splitFrames,
} from "../../messages/chunking.js";
import { encodeBatch, decodeBatch, BATCH_HEADER_BYTES } from "../../runtime/transport/batch.js";
import { InProcBus } from "../../runtime/transport/inproc.js";
import { Metrics } from "../../runtime/metrics.js";
import { silentLogger } from "../../runtime/log.js";
import { Wire } from "../../runtime/wire.js";
import {
  nodeInbox,
  nodeSubject,
  senderOf,
  topicPattern,
  topicSubject,
} from "../../runtime/actor/subjects.js";

const MiB = 1 << 20;

/** A hand-made chunk frame: any id, index, count and total, with `data` bytes of payload. */
function chunk(id: number, index: number, count: number, total: number, data: number): Uint8Array {
  const f = new Uint8Array(CHUNK_HEADER_BYTES + data);
  const v = new DataView(f.buffer);
  f[0] = 0xc1;
  f[1] = 1;
  v.setUint32(2, id, true);
  v.setUint32(10, index, true);
  v.setUint32(14, count, true);
  v.setUint32(18, total, true);
  return f;
}

const reason =
  (r: string) =>
  (e: unknown): boolean =>
    e instanceof MessageDecodeError && e.reason === r;

test("open sets are capped in all and per sender; a refused set holds nothing", () => {
  const r = new Reassembler({
    maxMessageBytes: 64 * MiB,
    maxBufferedBytes: 64 * MiB,
    timeoutMs: 1000,
    maxOpenSets: 6,
    maxSetsPerSender: 4,
  });
  for (let id = 0; id < 4; id++) r.push(chunk(id, 0, 4, 4000, 1000), "from.a");
  assert.throws(() => r.push(chunk(4, 0, 4, 4000, 1000), "from.a"), reason("chunk-overflow"));
  assert.equal(r.pending, 4);
  // Another sender still gets room, up to the total cap; its set ids 0 and 1 are its own sets.
  r.push(chunk(0, 0, 4, 4000, 1000), "from.b");
  r.push(chunk(1, 0, 4, 4000, 1000), "from.b");
  assert.throws(() => r.push(chunk(2, 0, 4, 4000, 1000), "from.b"), reason("chunk-overflow"));
  assert.equal(r.pending, 6);
  assert.equal(
    r.senderBytes("from.a"),
    4 * (SET_OVERHEAD_BYTES + PART_OVERHEAD_BYTES + 1000 + CHUNK_HEADER_BYTES),
  );
});

test("bookkeeping counts against the cap: a flood of sets with one tiny chunk each meets it", () => {
  const r = new Reassembler({
    maxMessageBytes: 64 * MiB,
    maxBufferedBytes: 100_000,
    timeoutMs: 1000,
    maxOpenSets: 1_000_000,
    maxSetsPerSender: 1_000_000,
  });
  let refused = 0;
  // Each set's last chunk: 1 byte of data. Counting data alone would admit 100 000 sets.
  for (let id = 0; id < 2000; id++) {
    try {
      r.push(chunk(id, 1, 2, 513, 1), "from.a");
    } catch (e) {
      assert.ok(reason("chunk-overflow")(e));
      refused++;
    }
  }
  const perSet = SET_OVERHEAD_BYTES + PART_OVERHEAD_BYTES + 1 + CHUNK_HEADER_BYTES;
  assert.equal(r.pending, Math.floor(100_000 / perSet));
  assert.equal(refused, 2000 - r.pending);
  assert.ok(r.bufferedBytes <= 100_000);
});

test("a claimed count allocates nothing and an absurd count or size is refused at once", () => {
  const r = new Reassembler({ maxMessageBytes: 256 * MiB, maxBufferedBytes: 512 * MiB, timeoutMs: 1000 });
  const before = process.memoryUsage().heapUsed;
  // 4 G chunks claimed for 256 MiB: an honest sender's chunks carry ≥ 512 B, so refused unseen.
  assert.throws(() => r.push(chunk(1, 0, 0xffff_ffff, 256 * MiB, 600), "s"), reason("chunk-malformed"));
  // A plausible count (256 Ki chunks of 1 KiB): one set, one part, and no array of 256 Ki slots.
  for (let id = 0; id < 16; id++) r.push(chunk(id, 5, 256 * 1024, 256 * MiB, 1024), "s");
  assert.ok(process.memoryUsage().heapUsed - before < 4 * MiB, "no pre-allocation from the claimed count");
  assert.throws(() => r.push(chunk(2, 0, 2, 300 * MiB, 600), "t"), reason("oversized"));
  // A chunk whose size does not fit its set's shape is refused (it could not complete honestly).
  assert.throws(() => r.push(chunk(3, 0, 4, 4000, 999), "t"), reason("chunk-malformed"));
  assert.throws(() => r.push(chunk(4, 0, 4, 4000, 100), "t"), reason("chunk-malformed"));
  r.push(chunk(50, 0, 4, 4000, 1000), "t");
  assert.throws(() => r.push(chunk(50, 3, 4, 4000, 999), "t"), reason("chunk-malformed"));
  assert.equal(r.pending, 16);
});

test("honest frames still reassemble in any order, and the last chunk alone fixes the shape", () => {
  const r = new Reassembler({ maxMessageBytes: MiB, maxBufferedBytes: MiB, timeoutMs: 1000 });
  const bytes = new Uint8Array(10_000).map((_, i) => i % 251);
  const frames = splitFrames(bytes, 1000);
  let whole: Uint8Array | undefined;
  for (const f of [...frames].reverse()) whole = r.push(f, "s") ?? whole;
  assert.deepEqual(whole, bytes);
  assert.equal(r.bufferedBytes, 0);
  assert.equal(r.senderBytes("s"), 0);
});

test("a chunk inside a batch is copied out and charged its own size, not the batch's", () => {
  const r = new Reassembler({ maxMessageBytes: 64 * MiB, maxBufferedBytes: 64 * MiB, timeoutMs: 1000 });
  // A 1 MiB batch: one chunk of 600 B and padding; holding the view would keep the whole batch alive.
  const small = chunk(7, 0, 4, 2400, 600);
  const pad = new Uint8Array(MiB);
  const bytes = BATCH_HEADER_BYTES + 8 + small.length + pad.length;
  const frames = decodeBatch(encodeBatch([small, pad], bytes));
  assert.ok(frames?.[0]);
  r.push(frames[0], "s");
  assert.equal(r.bufferedBytes, SET_OVERHEAD_BYTES + PART_OVERHEAD_BYTES + 600);
});

test("a per-sender byte budget keeps one sender from taking the whole buffer", () => {
  const r = new Reassembler({
    maxMessageBytes: 64 * MiB,
    maxBufferedBytes: 64 * MiB,
    timeoutMs: 1000,
    maxSenderBytes: 10_000,
  });
  for (let i = 0; i < 8; i++) r.push(chunk(1, i, 100, 100_000, 1000), "greedy");
  assert.throws(() => r.push(chunk(1, 8, 100, 100_000, 1000), "greedy"), reason("chunk-overflow"));
  assert.equal(r.senderBytes("greedy"), 0, "the overflowing set is dropped");
  r.push(chunk(1, 0, 100, 100_000, 1000), "polite");
  assert.equal(r.pending, 1);
});

test("the wire counts refused chunk sets as flock_bad_input_total{reason}", async () => {
  const bus = new InProcBus();
  const metrics = new Metrics();
  const wire = new Wire(bus.connect(), metrics, silentLogger());
  const raw = bus.connect();
  const off = wire.listen("flock.t.node.b", () => assert.fail("nothing whole arrives"));
  try {
    raw.publish("flock.t.node.b", chunk(1, 0, 0xffff_ffff, 0xffff, 600));
    for (let id = 0; id < 70; id++) raw.publish("flock.t.node.b", chunk(100 + id, 0, 4, 4000, 1000));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.equal(metrics.get("flock_bad_input_total", { reason: "chunk-malformed" }), 1);
    assert.equal(metrics.get("flock_bad_input_total", { reason: "chunk-overflow" }), 6, "64 sets per sender");
  } finally {
    off();
    wire.close();
  }
});

test("one budget per sending node across every subscription of a wire", async () => {
  const bus = new InProcBus();
  const metrics = new Metrics();
  const wire = new Wire(bus.connect(), metrics, silentLogger(), {}, { senderOf });
  const raw = bus.connect();
  const offs = [
    wire.listen(nodeInbox("t", "b"), () => assert.fail("nothing whole arrives")),
    wire.listen(topicPattern("t", "job.j.params"), () => assert.fail("nothing whole arrives")),
  ];
  try {
    // 40 open sets from x on each subject: 80 > the 64 a sender may hold open, all subjects together.
    for (let id = 0; id < 40; id++) {
      raw.publish(nodeSubject("t", "b", "x"), chunk(id, 0, 4, 4000, 1000));
      raw.publish(topicSubject("t", "job.j.params", "x"), chunk(id, 0, 4, 4000, 1000));
    }
    // Another sender still has its own room.
    raw.publish(nodeSubject("t", "b", "y"), chunk(1, 0, 4, 4000, 1000));
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
    assert.equal(metrics.get("flock_bad_input_total", { reason: "chunk-overflow" }), 80 - 64);
  } finally {
    for (const off of offs) off();
    wire.close();
  }
});
