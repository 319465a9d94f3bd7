import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrng } from "../../actors/compute/index.js";
import type { OptimizerSpec } from "../../actors/compute/optimizer.js";
import {
  initialReducerState,
  MISSING_AFTER_MS,
  reduce,
  type ReducerConfig,
  type ReducerEffect,
  type ReducerEvent,
  type ReducerState,
} from "../../actors/reducer/machine.js";
import {
  CheckpointDecodeError,
  decodeCheckpoint,
  encodeCheckpoint,
} from "../../actors/reducer/checkpoint.js";

const LENGTH = 257;
const COORD = "node-a/job/coordinator";
const ADAM: OptimizerSpec = { name: "adam", lr: 1e-3 };

function vector(seed: number, scale = 1): Float32Array<ArrayBuffer> {
  const rng = createPrng(seed);
  return Float32Array.from({ length: LENGTH }, () => (rng.next() * 2 - 1) * scale);
}

const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function config(over: Partial<ReducerConfig> = {}): ReducerConfig {
  return { r: 1, offset: 100, length: LENGTH, optimizer: ADAM, ...over };
}

/** A reducer loaded with version `version` of parameters (seeded). */
function loaded(cfg: ReducerConfig, version = 0, term = 1): ReducerState {
  const state = initialReducerState(cfg);
  const out = reduce(cfg, state, { type: "load", term, version, data: vector(7), checkpoint: undefined }, 0);
  assert.deepEqual(out, [
    { kind: "reply", msg: { type: "reducer.loaded", version, optimizerRestored: false } },
  ]);
  return state;
}

function grad(member: string, step: number, attempt = 0, n = 8): ReducerEvent {
  const seed = [...member].reduce((a, c) => a * 31 + c.charCodeAt(0), step);
  return { type: "grad", step, attempt, member, n, data: vector(seed, 10) };
}

function commit(step: number, contributors: string[], total: number, attempt = 0, term = 1): ReducerEvent {
  return { type: "commit", term, step, attempt, contributors, total, replyTo: COORD };
}

function tells(effects: ReducerEffect[]): Extract<ReducerEffect, { kind: "tell" }>["msg"][] {
  return effects.flatMap((e) => (e.kind === "tell" ? [e.msg] : []));
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

test("the sum is bit-identical under every arrival order of slices and commit", () => {
  const members = ["node-c", "node-a", "node-d", "node-b"];
  const events: ReducerEvent[] = [...members.map((m) => grad(m, 1)), commit(1, members, 32)];
  let reference: Buffer | undefined;
  let orders = 0;
  for (const order of permutations(events)) {
    const cfg = config();
    const state = loaded(cfg);
    const effects = order.flatMap((e) => reduce(cfg, state, e, 0));
    const applied = tells(effects).filter((m) => m.type === "coord.applied");
    assert.equal(applied.length, 1);
    assert.deepEqual(applied[0], {
      type: "coord.applied",
      term: 1,
      step: 1,
      attempt: 0,
      r: 1,
      summed: ["node-a", "node-b", "node-c", "node-d"],
      n: 32,
    });
    assert.equal(state.version, 1);
    const now = bytes(state.params!);
    reference ??= now;
    assert.ok(now.equals(reference), `order ${order.map((e) => e.type).join(",")} gave other bits`);
    orders++;
  }
  assert.equal(orders, 120);
  // And the update is not a no-op: the parameters moved.
  assert.ok(!reference!.equals(bytes(vector(7))));
});

test("only the commit set is summed: a dead member's buffered slice is ignored", () => {
  const cfg = config({ optimizer: { name: "sgd", lr: 0.5 } });
  const withDead = loaded(cfg);
  for (const m of ["node-a", "node-b", "node-dead"]) reduce(cfg, withDead, grad(m, 1), 0);
  const out = tells(reduce(cfg, withDead, commit(1, ["node-b", "node-a"], 16), 0));
  assert.deepEqual(out[0], {
    type: "coord.applied",
    term: 1,
    step: 1,
    attempt: 0,
    r: 1,
    summed: ["node-a", "node-b"],
    n: 16,
  });

  const without = loaded(cfg);
  for (const m of ["node-b", "node-a"]) reduce(cfg, without, grad(m, 1), 0);
  reduce(cfg, without, commit(1, ["node-a", "node-b"], 16), 0);
  assert.ok(bytes(withDead.params!).equals(bytes(without.params!)));
});

test("the keepDeadSlices fault sums the dead member's slice too (what the chaos audit must catch)", () => {
  const cfg = config({ faults: { keepDeadSlices: true } });
  const state = loaded(cfg);
  for (const m of ["node-a", "node-b", "node-dead"]) reduce(cfg, state, grad(m, 1), 0);
  const [msg] = tells(reduce(cfg, state, commit(1, ["node-a", "node-b"], 16), 0));
  assert.equal(msg?.type, "coord.applied");
  assert.deepEqual(msg?.type === "coord.applied" && msg.summed, ["node-a", "node-b", "node-dead"]);
});

test("apply then abort restores the exact previous parameters and optimizer state", () => {
  const cfg = config();
  const state = loaded(cfg);
  for (const step of [1, 2]) {
    for (const m of ["node-a", "node-b"]) reduce(cfg, state, grad(m, step), 0);
    reduce(cfg, state, commit(step, ["node-a", "node-b"], 16), 0);
  }
  const params = state.params!.slice();
  const optimizer = state.optimizer.exportState();
  for (const m of ["node-a", "node-b"]) reduce(cfg, state, grad(m, 3), 0);
  reduce(cfg, state, commit(3, ["node-a", "node-b"], 16), 0);
  assert.equal(state.version, 3);
  assert.ok(!bytes(state.params!).equals(bytes(params)));

  const out = reduce(cfg, state, { type: "abort", term: 1, step: 3 }, 0);
  assert.deepEqual(out, [{ kind: "reply", msg: { type: "reducer.aborted", version: 2 } }]);
  assert.equal(state.version, 2);
  assert.ok(bytes(state.params!).equals(bytes(params)));
  const restored = state.optimizer.exportState();
  assert.equal(restored.t, optimizer.t);
  assert.equal(restored.buffers.length, optimizer.buffers.length);
  restored.buffers.forEach((b, i) => assert.ok(bytes(b).equals(bytes(optimizer.buffers[i]!))));

  // The redo (attempt 1) gives what a straight run of that attempt gives.
  for (const m of ["node-a", "node-b"]) reduce(cfg, state, grad(m, 3, 1), 0);
  reduce(cfg, state, commit(3, ["node-a", "node-b"], 16, 1), 0);
  assert.equal(state.attempt, 1);
  const again = state.params!.slice();
  reduce(cfg, state, { type: "abort", term: 1, step: 3 }, 0);
  for (const m of ["node-b", "node-a"]) reduce(cfg, state, grad(m, 3, 2), 0);
  reduce(cfg, state, commit(3, ["node-a", "node-b"], 16, 2), 0);
  assert.ok(bytes(state.params!).equals(bytes(again)), "redo after undo must repeat the step bit for bit");
});

test("abort of a step not applied drops its buffers and changes nothing else", () => {
  const cfg = config();
  const state = loaded(cfg);
  for (const m of ["node-a", "node-b"]) reduce(cfg, state, grad(m, 1), 0);
  reduce(cfg, state, commit(1, ["node-a", "node-b"], 16), 0);
  const params = state.params!.slice();
  const t = state.optimizer.t;
  reduce(cfg, state, grad("node-a", 2), 0);
  const out = reduce(cfg, state, { type: "abort", term: 1, step: 2 }, 0);
  assert.deepEqual(out, [{ kind: "reply", msg: { type: "reducer.aborted", version: 1 } }]);
  assert.equal(state.version, 1);
  assert.equal(state.optimizer.t, t);
  assert.ok(bytes(state.params!).equals(bytes(params)));
  assert.equal(state.buffers.size, 0, "the aborted step's slices are dropped");
});

test("a commit whose contributor's slice never comes reports it missing at the deadline", () => {
  const cfg = config();
  const state = loaded(cfg);
  reduce(cfg, state, grad("node-a", 1), 1_000);
  const first = reduce(cfg, state, commit(1, ["node-a", "node-b"], 16), 1_000);
  assert.deepEqual(first, [{ kind: "wake", afterMs: MISSING_AFTER_MS }]);
  assert.deepEqual(reduce(cfg, state, { type: "wake" }, 1_000 + MISSING_AFTER_MS - 100), [
    { kind: "wake", afterMs: 100 },
  ]);
  const late = tells(reduce(cfg, state, { type: "wake" }, 1_000 + MISSING_AFTER_MS));
  assert.deepEqual(late, [
    {
      type: "coord.missing",
      term: 1,
      step: 1,
      attempt: 0,
      r: 1,
      members: ["node-b"],
      reason: "slices never arrived",
    },
  ]);
  assert.equal(state.version, 0);
  assert.equal(state.waiting, undefined);
  // A slice that arrives before the deadline completes the commit at once.
  const other = loaded(cfg);
  reduce(cfg, other, commit(1, ["node-a"], 8), 0);
  const applied = tells(reduce(cfg, other, grad("node-a", 1), 500));
  assert.equal(applied[0]?.type, "coord.applied");
});

test("stale term, step and attempt are ignored", () => {
  const cfg = config();
  const state = loaded(cfg, 0, 5);
  assert.equal(reduce(cfg, state, commit(1, ["node-a"], 8, 0, 4), 0)[0]?.kind, "ignore");
  assert.equal(reduce(cfg, state, { type: "abort", term: 4, step: 1 }, 0)[0]?.kind, "ignore");
  // A slice of another attempt does not count for this one.
  reduce(cfg, state, grad("node-a", 1, 0), 0);
  assert.deepEqual(reduce(cfg, state, commit(1, ["node-a"], 8, 1, 5), 0), [
    { kind: "wake", afterMs: MISSING_AFTER_MS },
  ]);
  reduce(cfg, state, grad("node-a", 1, 1), 0);
  assert.equal(state.version, 1);
  // A slice for a step already applied is ignored.
  assert.equal(reduce(cfg, state, grad("node-a", 1, 2), 0)[0]?.kind, "ignore");
  // A slice of the wrong length is ignored.
  const short: ReducerEvent = {
    type: "grad",
    step: 2,
    attempt: 0,
    member: "node-a",
    n: 1,
    data: new Float32Array(3),
  };
  assert.equal(reduce(cfg, state, short, 0)[0]?.kind, "ignore");
  // A commit for a step that does not follow the version held is answered with the version held.
  assert.deepEqual(tells(reduce(cfg, state, commit(4, ["node-a"], 8, 0, 5), 0)), [
    {
      type: "coord.missing",
      term: 5,
      step: 4,
      attempt: 0,
      r: 1,
      members: [],
      reason: "reducer holds version 1",
    },
  ]);
});

test("a commit already applied is answered again (and the slice republished) without applying it twice", () => {
  const cfg = config();
  const state = loaded(cfg);
  reduce(cfg, state, grad("node-a", 1), 0);
  reduce(cfg, state, commit(1, ["node-a"], 8), 0);
  const params = state.params!.slice();
  const again = reduce(cfg, state, commit(1, ["node-a"], 8, 0, 2), 0);
  assert.deepEqual(
    again.map((e) => e.kind),
    ["publish", "tell"],
  );
  assert.equal(tells(again)[0]?.term, 2);
  assert.ok(bytes(state.params!).equals(bytes(params)));
});

test("fetch and load refuse what they cannot serve; a load restores checkpointed optimizer state", () => {
  const cfg = config();
  const empty = initialReducerState(cfg);
  assert.equal(reduce(cfg, empty, { type: "fetch" }, 0)[0]?.kind, "refuse");
  const misfit = reduce(
    cfg,
    empty,
    { type: "load", term: 1, version: 0, data: new Float32Array(3), checkpoint: undefined },
    0,
  );
  assert.equal(misfit[0]?.kind, "refuse");
  assert.equal(empty.version, -1);

  const state = loaded(cfg);
  reduce(cfg, state, grad("node-a", 1), 0);
  reduce(cfg, state, commit(1, ["node-a"], 8), 0);
  const [write] = reduce(cfg, state, { type: "checkpoint", term: 1, step: 1, replyTo: COORD }, 0);
  assert.equal(write?.kind, "checkpoint");
  if (write?.kind !== "checkpoint") return;
  assert.deepEqual(write.done, { type: "coord.checkpointed", term: 1, step: 1, r: 1 });
  const checkpoint = decodeCheckpoint(encodeCheckpoint(write.blob), "cp");
  assert.ok(bytes(checkpoint.params).equals(bytes(state.params!)));

  const replacement = initialReducerState(cfg);
  const out = reduce(
    cfg,
    replacement,
    { type: "load", term: 2, version: 1, data: state.params!, checkpoint },
    0,
  );
  assert.deepEqual(out, [
    { kind: "reply", msg: { type: "reducer.loaded", version: 1, optimizerRestored: true } },
  ]);
  assert.equal(replacement.optimizer.t, 1);
  // Both continue bit-identically.
  for (const s of [state, replacement]) {
    reduce(cfg, s, grad("node-a", 2), 0);
    reduce(cfg, s, commit(2, ["node-a"], 8, 0, 2), 0);
  }
  assert.ok(bytes(replacement.params!).equals(bytes(state.params!)));

  const sgdState = { ...checkpoint, optimizer: { name: "sgd" as const, t: 1, buffers: [] } };
  const wrong = reduce(
    cfg,
    initialReducerState(cfg),
    { type: "load", term: 2, version: 1, data: state.params!, checkpoint: sgdState },
    0,
  );
  assert.equal(wrong[0]?.kind, "refuse");
  assert.equal(
    reduce(cfg, state, { type: "checkpoint", term: 2, step: 7, replyTo: COORD }, 0)[0]?.kind,
    "ignore",
  );
});

test("an undecodable checkpoint blob is refused with a clear error", () => {
  assert.throws(() => decodeCheckpoint(new Uint8Array([0xc1]), "job/ckpt/1/r0"), CheckpointDecodeError);
  const valid = encodeCheckpoint({
    version: 1,
    offset: 0,
    params: new Float32Array(2),
    optimizer: { name: "adam", t: 1, buffers: [] },
  });
  assert.equal(decodeCheckpoint(valid, "ok").version, 1);
  // {x: 1}: msgpack, but not a checkpoint.
  assert.throws(
    () => decodeCheckpoint(Buffer.from([0x81, 0xa1, 0x78, 0x01]), "job/ckpt/2/r0"),
    (error: unknown) =>
      error instanceof CheckpointDecodeError &&
      /job\/ckpt\/2\/r0 is not a reducer checkpoint/.test(error.message),
  );
});
