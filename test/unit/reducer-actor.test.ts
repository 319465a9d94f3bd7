/**
 * The reducer's shell on the in-process transport: requests it cannot serve are refused with a
 * failure reply and the reducer lives on; the missing-slice deadline runs on virtual time;
 * checkpoints go through the codec.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { ActorSystem, RemoteActorError, type Message } from "../../runtime/actor/index.js";
import { VirtualScheduler } from "../../runtime/clock.js";
import { silentLogger } from "../../runtime/log.js";
import { MemoryStores } from "../../runtime/store/index.js";
import { InProcBus } from "../../runtime/transport/index.js";
import type { ParamsSlice } from "../../messages/index.js";
import type { CoordinatorCommand } from "../../actors/coordinator/protocol.js";
import { IGNORED_MESSAGES_METRIC } from "../../actors/ignored.js";
import { resolveJobSpec } from "../../actors/api.js";
import { reducerBehavior } from "../../actors/reducer/behavior.js";
import { MISSING_AFTER_MS } from "../../actors/reducer/machine.js";
import type { Loaded, ReducerCommand, SliceCopy } from "../../actors/reducer/protocol.js";
import { jobNames } from "../../actors/job/names.js";
import { decodeCheckpoint, encodeCheckpoint, sha256Hex } from "../../actors/reducer/checkpoint.js";

const LENGTH = 4;
const ASK = { timeoutMs: 2_000 };

async function setUp(t: TestContext) {
  const bus = new InProcBus(256 * 1024);
  const system = await ActorSystem.start({
    nodeId: "node-a",
    transport: bus.connect(),
    ownsTransport: true,
    log: silentLogger(),
  });
  t.after(() => system.stop());
  const scheduler = new VirtualScheduler();
  const stores = new MemoryStores();
  const published: ParamsSlice[] = [];
  const spec = { ...resolveJobSpec("mnist"), optimizer: { name: "sgd" as const, lr: 0.5 } };
  const reducer = system.spawn(
    reducerBehavior(
      { job: "j", r: 0, offset: 0, length: LENGTH, spec },
      {
        publish: (_topic, msg) => published.push(msg),
        blobs: () => stores.blobs("ckpt"),
        scheduler,
        metrics: system.metrics,
      },
    ),
    { name: "reducer", supervision: { strategy: "stop" } },
  );
  const got: CoordinatorCommand[] = [];
  const coordinator = system.spawn<CoordinatorCommand, undefined>(
    { receive: (_s, msg) => void got.push(msg) },
    { name: "coordinator" },
  );
  const ref = system.ref<ReducerCommand>(reducer.address);
  return { system, scheduler, stores, published, ref, coordinator, got };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(ok(), `timed out waiting for ${what}`);
}

const load = (data: Float32Array<ArrayBuffer>, checkpointStep: number | null = null): ReducerCommand => ({
  type: "reducer.load",
  term: 1,
  version: 0,
  data,
  checkpointStep,
});

test("fetch before load and a load of the wrong length are refused; the reducer lives on", async (t) => {
  const { system, ref } = await setUp(t);
  await assert.rejects(ref.ask({ type: "reducer.fetch" }, ASK), RemoteActorError);
  await assert.rejects(ref.ask(load(new Float32Array(LENGTH + 1)), ASK), /does not fit reducer 0/);
  // A type it never handles, told: counted, not thrown on.
  ref.tell({ type: "reducer.loaded", version: 3, optimizerRestored: false });
  const loaded = await ref.ask<Loaded>(load(Float32Array.from([1, 2, 3, 4])), ASK);
  assert.deepEqual(loaded, { type: "reducer.loaded", version: 0, optimizerRestored: false });
  const copy = await ref.ask<SliceCopy>({ type: "reducer.fetch" }, ASK);
  assert.deepEqual(Array.from(copy.data), [1, 2, 3, 4]);
  assert.equal(
    system.metrics.get(IGNORED_MESSAGES_METRIC, {
      actor: "reducer",
      type: "reducer.fetch",
      reason: "refused",
    }),
    1,
  );
  assert.equal(
    system.metrics.get(IGNORED_MESSAGES_METRIC, {
      actor: "reducer",
      type: "reducer.loaded",
      reason: "reply-type",
    }),
    1,
  );
});

test("a commit missing a slice is reported at the deadline on virtual time; a complete one is applied and published", async (t) => {
  const { scheduler, ref, coordinator, got, published, system } = await setUp(t);
  await ref.ask(load(new Float32Array(LENGTH)), ASK);
  const grad = (member: string): ReducerCommand => ({
    type: "reducer.grad",
    term: 1,
    step: 1,
    attempt: 0,
    member,
    n: 2,
    data: Float32Array.from([2, 2, 2, 2]),
  });
  ref.tell(grad("node-a"));
  const commit: ReducerCommand = {
    type: "reducer.commit",
    term: 1,
    step: 1,
    attempt: 0,
    contributors: ["node-a", "node-b"],
    total: 4,
  };
  ref.tell(commit, coordinator);
  // The mailbox is FIFO: once a fetch is answered, the slice and the commit were handled (the
  // commit's wait started at virtual time 0), however many turns that took on a loaded machine.
  await ref.ask<SliceCopy>({ type: "reducer.fetch" }, ASK);
  scheduler.advance(MISSING_AFTER_MS - 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(got.length, 0, "not before the deadline");
  scheduler.advance(1);
  await until("coord.missing", () => got.length === 1);
  assert.deepEqual(got[0], {
    type: "coord.missing",
    term: 1,
    step: 1,
    attempt: 0,
    r: 0,
    members: ["node-b"],
    reason: "slices never arrived",
  });
  // Node b's slice from node a (or from nowhere) is refused: only b speaks for b.
  ref.tell(grad("node-b"));
  ref.tell(grad("node-b"), "node-c/j.trainer");
  ref.tell({ ...commit, attempt: 0 }, coordinator);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(got.length, 1, "nothing applied: b's slice is still missing");
  ref.tell(grad("node-b"), "node-b/j.trainer"); // completes the commit told again above
  await until("coord.applied", () => got.length >= 2);
  assert.equal(got[1]?.type, "coord.applied");
  assert.equal(
    system.metrics.get(IGNORED_MESSAGES_METRIC, {
      actor: "reducer",
      type: "reducer.grad",
      reason: "not-its-member",
    }),
    2,
  );
  assert.equal(published.length, 1);
  // sum 4 over total 4 = 1 per value; sgd lr 0.5: 0 - 0.5.
  assert.deepEqual(Array.from(published[0]!.data), [-0.5, -0.5, -0.5, -0.5]);
});

test("a checkpoint is written through the codec and restores the optimizer of a replacement", async (t) => {
  const { ref, coordinator, got, stores } = await setUp(t);
  await ref.ask(load(new Float32Array(LENGTH)), ASK);
  ref.tell({ type: "reducer.checkpoint", term: 1, step: 0 }, coordinator);
  await until("coord.checkpointed", () => got.length === 1);
  const stored = await (await stores.blobs("ckpt")).get(jobNames.checkpoint("j", 0, 0));
  assert.ok(stored);
  assert.deepEqual(got[0], {
    type: "coord.checkpointed",
    term: 1,
    step: 0,
    r: 0,
    bytes: stored.length,
    sha256: sha256Hex(stored),
  });
  const loaded = await ref.ask<Loaded>(load(new Float32Array(LENGTH), 0), ASK);
  assert.equal(loaded.optimizerRestored, true);
  // A corrupt blob is refused with the codec's error, and the reducer keeps answering.
  await (
    await stores.blobs("ckpt")
  ).put(jobNames.checkpoint("j", 9, 0), Uint8Array.from([0x81, 0xa1, 0x78, 0x01]));
  await assert.rejects(ref.ask(load(new Float32Array(LENGTH), 9), ASK), /is not a reducer checkpoint/);
  const copy = await ref.ask<Message>({ type: "reducer.fetch" }, ASK);
  assert.equal(copy.type, "reducer.slice");
});

test("a restore loads parameters and optimizer state from the reducer's own part, only if size and sha256 match", async (t) => {
  const { ref, coordinator, got, stores } = await setUp(t);
  const blobs = await stores.blobs("ckpt");
  await ref.ask(load(Float32Array.from([1, 1, 1, 1])), ASK);
  ref.tell({ type: "reducer.checkpoint", term: 1, step: 0 }, coordinator);
  await until("coord.checkpointed", () => got.length === 1);
  // The part of step 3, as a reducer of the lost timeline wrote it.
  const written = decodeCheckpoint((await blobs.get(jobNames.checkpoint("j", 0, 0)))!, "step 0");
  const part = encodeCheckpoint({ ...written, version: 3, params: Float32Array.from([5, 6, 7, 8]) });
  await blobs.put(jobNames.checkpoint("j", 3, 0), part);
  const restore = (over: Partial<{ step: number; bytes: number; sha256: string }> = {}): ReducerCommand => ({
    type: "reducer.restore",
    term: 1,
    step: 3,
    bytes: part.length,
    sha256: sha256Hex(part),
    ...over,
  });
  await assert.rejects(ref.ask(restore({ sha256: "0".repeat(64) }), ASK), /sha256/);
  await assert.rejects(ref.ask(restore({ bytes: part.length + 1 }), ASK), /bytes, the manifest says/);
  await assert.rejects(ref.ask(restore({ step: 4 }), ASK), /missing/);
  // Another slice's part (it holds version 0, not the step asked) is refused too.
  const other = (await blobs.get(jobNames.checkpoint("j", 0, 0)))!;
  await blobs.put(jobNames.checkpoint("j", 5, 0), other);
  await assert.rejects(
    ref.ask(restore({ step: 5, bytes: other.length, sha256: sha256Hex(other) }), ASK),
    /holds version 0/,
  );
  let copy = await ref.ask<SliceCopy>({ type: "reducer.fetch" }, ASK);
  assert.deepEqual([copy.version, ...copy.data], [0, 1, 1, 1, 1], "a refused restore changes nothing");
  const loaded = await ref.ask<Loaded>(restore(), ASK);
  assert.deepEqual(loaded, { type: "reducer.loaded", version: 3, optimizerRestored: true });
  copy = await ref.ask<SliceCopy>({ type: "reducer.fetch" }, ASK);
  assert.deepEqual([copy.version, ...copy.data], [3, 5, 6, 7, 8], "bit-identical to the checkpoint");
});
