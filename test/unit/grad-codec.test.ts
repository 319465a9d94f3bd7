/**
 * Compressed gradient slices end to end without a network: the trainer's encoder (slices per
 * reducer, bytes counted, the residual restored when a step is computed again), the wire schema
 * through the msgpack codec (a hostile payload refused), and the reducer machine decoding packed
 * slices into the same bit-identical sum on every replica.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { decode, encode } from "../../actors/compute/compress.js";
import { createPrng } from "../../actors/compute/index.js";
import {
  initialReducerState,
  reduce,
  type ReducerConfig,
  type ReducerEffect,
} from "../../actors/reducer/machine.js";
import { GradSlice, type GradData } from "../../actors/reducer/protocol.js";
import { GRAD_BYTES_METRIC, GradEncoder } from "../../actors/trainer/grad-codec.js";
import { createCodec } from "../../messages/codec.js";
import { Metrics } from "../../runtime/metrics.js";

const N = 1000;
const REDUCERS = { addresses: ["a/r0", "b/r1", "a/r2"], bounds: [0, 333, 667, N] };

function vector(seed: number, n = N, scale = 1): Float32Array {
  const rng = createPrng(seed);
  return Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale);
}

function packed(d: GradData | undefined): Exclude<GradData, Float32Array> {
  assert.ok(d && !(d instanceof Float32Array), "a packed slice");
  return d;
}

/** What the reducers decode of one step's slices, joined back into one vector. */
function decoded(slices: ReturnType<GradEncoder["encode"]>): Float32Array {
  const out = new Float32Array(N);
  slices.forEach(({ data }, r) => {
    const p = packed(data);
    out.set(decode(p.encoding, p.bytes, p.length)!, REDUCERS.bounds[r]);
  });
  return out;
}

test("none: float32 views of the gradient; bytes counted per encoding; fp16 halves them", async () => {
  const metrics = new Metrics();
  const g = vector(1);
  const none = new GradEncoder("none", metrics).encode(1, g, REDUCERS);
  assert.deepEqual(
    none.map((s) => s.address),
    REDUCERS.addresses,
  );
  none.forEach(({ data }, r) => {
    assert.ok(data instanceof Float32Array && data.buffer === g.buffer, "a view, no copy");
    assert.deepEqual(data, g.subarray(REDUCERS.bounds[r], REDUCERS.bounds[r + 1]));
  });
  const fp16 = new GradEncoder("fp16", metrics).encode(1, g, REDUCERS);
  const int8 = new GradEncoder("int8", metrics).encode(1, g, REDUCERS);
  assert.equal(metrics.get(GRAD_BYTES_METRIC, { encoding: "none" }), 4 * N);
  assert.equal(metrics.get(GRAD_BYTES_METRIC, { encoding: "fp16" }), 2 * N);
  assert.equal(metrics.get(GRAD_BYTES_METRIC, { encoding: "int8" }), N + 4 * (2 + 2 + 2));
  assert.deepEqual(
    fp16.map((s) => packed(s.data).length),
    [333, 334, 333],
  );
  assert.match(await metrics.render(), /flock_trainer_grad_bytes_total\{encoding="fp16"\} 2000/);
  assert.equal(int8.length, 3);
});

test("a step computed again starts from the residual before its first attempt: nothing lost or doubled", () => {
  for (const e of ["fp16", "int8"] as const) {
    const enc = new GradEncoder(e);
    const fresh = new GradEncoder(e);
    const truth = new Float64Array(N);
    const got = new Float64Array(N);
    const commit = (g: Float32Array, slices: ReturnType<GradEncoder["encode"]>) => {
      const d = decoded(slices);
      for (let i = 0; i < N; i++) {
        truth[i]! += g[i]!;
        got[i]! += d[i]!;
      }
    };
    // Step 1 commits. Step 2: attempt 0 aborted (another batch), attempt 1 commits.
    const g1 = vector(11, N, 1e-3);
    commit(g1, enc.encode(1, g1, REDUCERS));
    fresh.encode(1, g1, REDUCERS);
    enc.encode(2, vector(99, N, 1e-3), REDUCERS);
    const g2 = vector(12, N, 1e-3);
    const redo = enc.encode(2, g2, REDUCERS);
    commit(g2, redo);
    // The redo is exactly what a trainer that never saw the aborted attempt sends.
    assert.deepEqual(
      redo.map((s) => packed(s.data).bytes),
      fresh.encode(2, g2, REDUCERS).map((s) => packed(s.data).bytes),
      `${e}: redo of step 2`,
    );
    // Bounded staleness: steps 3 and 4 computed, step 3 aborted, so both are computed again.
    enc.encode(3, vector(98, N, 1e-3), REDUCERS);
    enc.encode(4, vector(97, N, 1e-3), REDUCERS);
    const g3 = vector(13, N, 1e-3);
    const g4 = vector(14, N, 1e-3);
    commit(g3, enc.encode(3, g3, REDUCERS));
    commit(g4, enc.encode(4, g4, REDUCERS));
    fresh.encode(3, g3, REDUCERS);
    fresh.encode(4, g4, REDUCERS);
    assert.deepEqual(enc.pending(), fresh.pending(), `${e}: residual after the redone steps`);
    // What was committed plus what is pending is what was computed for the committed attempts.
    const left = enc.pending()!;
    for (let i = 0; i < N; i++) assert.ok(Math.abs(truth[i]! - got[i]! - left[i]!) < 1e-7, `${e} value ${i}`);
  }
});

test("the wire: a packed slice survives the msgpack codec and the schema; a hostile one is refused", () => {
  const codec = createCodec();
  const bytes = encode("int8", vector(3, 333));
  const msg = { type: "reducer.grad", term: 1, step: 1, attempt: 0, member: "a", n: 8 };
  const through = (data: unknown) =>
    GradSlice.safeParse(
      codec.decode(
        codec.encode({ v: 1, type: msg.type, id: "1", to: "b/r", from: "a/t", body: { ...msg, data } }),
      ).body,
    );
  const ok = through({ encoding: "int8", length: 333, bytes });
  assert.ok(ok.success, JSON.stringify(ok.error?.issues));
  assert.deepEqual(decode("int8", packed(ok.data.data).bytes, 333), decode("int8", bytes, 333));
  assert.ok(through(vector(1, 4)).success, "float32 still accepted");
  for (const bad of [
    { encoding: "int8", length: 334, bytes },
    { encoding: "fp16", length: 333, bytes },
    { encoding: "int8", length: 2 ** 40, bytes },
    { encoding: "int4", length: 333, bytes },
    { encoding: "int8", length: 333, bytes: [1, 2, 3] },
    { encoding: "int8", length: 333, bytes, extra: 1 },
  ])
    assert.equal(through(bad).success, false, JSON.stringify({ ...bad, bytes: undefined }));
});

const CONFIG: ReducerConfig = { r: 1, offset: 333, length: 334, optimizer: { name: "sgd", lr: 0.1 } };

/** A reducer loaded at version 0, then fed `grads` of step 1 and the commit; its effects. */
function runReducer(grads: Array<{ member: string; data: GradData }>): ReducerEffect[] {
  const state = initialReducerState(CONFIG);
  reduce(
    CONFIG,
    state,
    { type: "load", term: 1, version: 0, data: new Float32Array(334), checkpoint: undefined },
    0,
  );
  const effects = grads.flatMap(({ member, data }) =>
    reduce(CONFIG, state, { type: "grad", step: 1, attempt: 0, member, n: 4, data }, 0),
  );
  const contributors = [...new Set(grads.map((g) => g.member))].sort();
  const commit = {
    type: "commit",
    term: 1,
    step: 1,
    attempt: 0,
    contributors,
    total: 8,
    replyTo: "c/x",
  } as const;
  return [...effects, ...reduce(CONFIG, state, commit, 0)];
}

const published = (effects: ReducerEffect[]) =>
  effects.flatMap((e) =>
    e.kind === "publish" ? [Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength)] : [],
  );
const ignores = (effects: ReducerEffect[]) => effects.flatMap((e) => (e.kind === "ignore" ? [e.reason] : []));

test("the reducer decodes packed slices and sums what a float32 sender of the decoded values gives", () => {
  for (const e of ["fp16", "int8"] as const) {
    const ga = vector(21, 334);
    const gb = vector(22, 334);
    const pa = { encoding: e, length: 334, bytes: encode(e, ga) };
    const pb = { encoding: e, length: 334, bytes: encode(e, gb) };
    const fromPacked = published(
      runReducer([
        { member: "b", data: pb },
        { member: "a", data: pa },
      ]),
    );
    const fromFloats = published(
      runReducer([
        { member: "a", data: decode(e, pa.bytes, 334)! },
        { member: "b", data: decode(e, pb.bytes, 334)! },
      ]),
    );
    assert.equal(fromPacked.length, 1, `${e}: the step applied`);
    assert.deepEqual(fromPacked, fromFloats, `${e}: bit-identical to the decoded floats`);
  }
});

test("the reducer drops a malformed or misfit packed slice, counts it, and lives on", () => {
  const good = encode("int8", vector(5, 334));
  const nanScale = good.slice();
  new DataView(nanScale.buffer).setFloat32(0, NaN, true);
  const effects = runReducer([
    { member: "a", data: { encoding: "int8", length: 334, bytes: nanScale } },
    { member: "a", data: { encoding: "fp16", length: 333, bytes: new Uint8Array(666) } },
    { member: "a", data: { encoding: "fp16", length: 334, bytes: new Uint8Array(10) } },
  ]);
  assert.deepEqual(ignores(effects), ["bad-payload", "wrong-length", "bad-payload"]);
  assert.equal(published(effects).length, 0, "nothing applied without a's slice");
  const later = runReducer([
    { member: "a", data: { encoding: "int8", length: 334, bytes: nanScale } },
    { member: "a", data: { encoding: "int8", length: 334, bytes: good } },
  ]);
  assert.deepEqual(ignores(later), ["bad-payload"]);
  assert.equal(published(later).length, 1, "a good slice after a bad one counts");
});
