/**
 * Local steps (`sync.every`, local SGD / DiLoCo): the spec's rules, the outer Nesterov
 * optimizer, how a round is cut into inner batches, the inner optimizer's rewind on a redo, the
 * engine's round against the same steps done by hand, and the coordinator's round-sized shares.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ComputeEngine, createOptimizer } from "../../actors/compute/index.js";
import { InnerOptimizer, innerBatches, pseudoGradient } from "../../actors/compute/local-steps.js";
import { JobSpec } from "../../actors/job/spec.js";
import { reducerOptimizer, roundSamples } from "../../actors/job/sync.js";
import type { Command } from "../../actors/coordinator/model.js";
import { Driver, testSpec } from "./coordinator-harness.js";

const base = {
  model: "mnist-mlp",
  dataset: "mnist",
  epochs: 1,
  globalBatch: 64,
  optimizer: { name: "adam", lr: 0.002 },
};

test("the spec: every (local steps) 1..64, no staleness with it, an outer optimizer only with it", () => {
  const spec = JobSpec.parse({ ...base, sync: { every: 8 } });
  assert.deepEqual(spec.sync, { staleness: 0, every: 8 });
  assert.equal(roundSamples(spec), 512);
  assert.deepEqual(reducerOptimizer(spec), { name: "sgd", lr: 0.7, momentum: 0.5, nesterov: true });
  const plain = JobSpec.parse(base);
  assert.equal(plain.sync.every, 1);
  assert.equal(roundSamples(plain), 64);
  assert.deepEqual(
    reducerOptimizer(plain),
    plain.optimizer,
    "without local steps the reducers apply the job's optimizer",
  );
  const outer = JobSpec.parse({ ...base, sync: { every: 4, outer: { lr: 0.5 } } });
  assert.deepEqual(reducerOptimizer(outer), { name: "sgd", lr: 0.5, momentum: 0.5, nesterov: true });
  const bad = (sync: unknown, path: string) => {
    const r = JobSpec.safeParse({ ...base, sync });
    assert.equal(r.success, false, JSON.stringify(sync));
    assert.ok(
      r.error.issues.some((i) => i.path.join(".") === path),
      `${JSON.stringify(sync)}: ${r.error.message}`,
    );
  };
  bad({ every: 0 }, "sync.every");
  bad({ every: 65 }, "sync.every");
  bad({ every: 2.5 }, "sync.every");
  bad({ every: 4, staleness: 1 }, "sync.staleness");
  bad({ outer: { lr: 0.7 } }, "sync.outer");
  bad({ every: 4, outer: { name: "adam" } }, "sync.outer.name");
  bad({ every: 4, outer: { lr: 0 } }, "sync.outer.lr");
  bad({ every: 4, outer: { momentum: 1 } }, "sync.outer.momentum");
});

test("Nesterov SGD: v = μv + g, p -= lr·(g + μv), from the first step on", () => {
  const opt = createOptimizer({ name: "sgd", lr: 0.5, momentum: 0.9, nesterov: true });
  const p = new Float32Array([1, -2]);
  opt.step(p, new Float32Array([2, 4]), 0.5); // g = [1, 2]; v = [1, 2]; p -= 0.5·(g + 0.9v)
  assert.deepEqual(Array.from(p), [Math.fround(1 - 0.5 * 1.9), Math.fround(-2 - 0.5 * 3.8)]);
  opt.step(p, new Float32Array([0, 0])); // g = 0; v = 0.9·[1, 2]; p -= 0.5·0.9·v
  const v = [0.9, 1.8];
  assert.deepEqual(Array.from(p), [
    Math.fround(Math.fround(1 - 0.95) - 0.5 * 0.9 * Math.fround(v[0]!)),
    Math.fround(Math.fround(-2 - 1.9) - 0.5 * 0.9 * Math.fround(v[1]!)),
  ]);
  const heavy = createOptimizer({ name: "sgd", lr: 0.5, momentum: 0.9 });
  const q = new Float32Array([1, -2]);
  heavy.step(q, new Float32Array([2, 4]), 0.5);
  assert.deepEqual(Array.from(q), [0.5, -3], "without nesterov: the heavy ball, p -= lr·v");
  const state = opt.exportState();
  assert.equal(state.name, "sgd");
  assert.equal(state.buffers.length, 1, "one velocity buffer, checkpointed like momentum's");
});

test("a round's samples cut into H consecutive, non-empty inner batches", () => {
  const idx = Array.from({ length: 10 }, (_, i) => i);
  assert.deepEqual(innerBatches(idx, 3), [
    [0, 1, 2, 3],
    [4, 5, 6],
    [7, 8, 9],
  ]);
  assert.deepEqual(innerBatches(idx.slice(0, 2), 8), [[0], [1]], "fewer samples than steps: one each");
  assert.deepEqual(innerBatches([], 4), []);
  assert.deepEqual(innerBatches(idx, 1), [idx]);
  assert.deepEqual(innerBatches(idx, 10).flat(), idx, "every sample once, in order");
});

test("the inner optimizer carries its state across rounds and rewinds a redone round", () => {
  const inner = new InnerOptimizer({ name: "adam", lr: 0.1 });
  const g = new Float32Array([1, -1]);
  const run = (round: number) => {
    const p = new Float32Array([0, 0]);
    const opt = inner.forRound(round);
    opt.step(p, g);
    opt.step(p, g);
    return { p: Array.from(p), t: opt.t };
  };
  const first = run(1);
  assert.equal(first.t, 2);
  assert.deepEqual(run(1), first, "a redo of round 1 starts from the state round 1 started from");
  const second = run(2);
  assert.equal(second.t, 4, "round 2 goes on from round 1's state");
  assert.notDeepEqual(second.p, first.p);
  assert.deepEqual(run(2), second);
});

test("the pseudo-gradient is (start − end)·n", () => {
  const g = pseudoGradient(new Float32Array([1, 2, 3]), new Float32Array([0.5, 2, 4]), 4);
  assert.deepEqual(Array.from(g), [2, 0, -4]);
});

test("the engine's round: H inner steps as done by hand, the parameters left as they started", async () => {
  const engine = await ComputeEngine.create({
    model: "mnist-mlp",
    dataset: "mnist",
    backend: "wasm",
    seed: 2,
  });
  try {
    const start = engine.getParams();
    const idx = Array.from({ length: 48 }, (_, i) => i * 7);
    const sgd = { name: "sgd" as const, lr: 0.05 };
    const round = engine.localSteps(idx, 3, sgd, 1);
    assert.equal(round.n, 48);
    assert.deepEqual(engine.getParams(), start, "the engine still holds the round's starting parameters");
    // By hand: three SGD steps of 16 samples each, from the same start.
    const p = start.slice();
    let lossSum = 0;
    const opt = createOptimizer(sgd);
    for (const batch of innerBatches(idx, 3)) {
      engine.setParams(p);
      const g = engine.gradients(batch);
      lossSum += g.lossSum;
      opt.step(p, g.grad, 1 / g.n);
    }
    engine.setParams(start);
    const expected = pseudoGradient(start, p, 48);
    assert.deepEqual(round.grad, expected, "bit-identical to the steps done by hand");
    assert.equal(round.lossSum, lossSum);
    // One inner SGD step's pseudo-gradient is lr × the gradient sum (the synchronous update).
    const one = engine.localSteps(idx.slice(0, 16), 1, sgd, 2);
    const grad = engine.gradients(idx.slice(0, 16)).grad;
    let worst = 0;
    for (let i = 0; i < grad.length; i++) worst = Math.max(worst, Math.abs(one.grad[i]! - 0.05 * grad[i]!));
    assert.ok(worst < 1e-5, `max difference ${worst}`);
  } finally {
    engine.dispose();
  }
});

test("the coordinator tells round-sized shares: H × globalBatch split over the members", () => {
  const d = new Driver(["a", "b"], testSpec({ globalBatch: 8, sync: { every: 4 } }));
  d.place(["a", "b"]);
  const sizes = d
    .take("tell")
    .flatMap((c: Extract<Command, { kind: "tell" }>) =>
      c.msg.type === "trainer.step" ? [c.msg.batchSize] : [],
    );
  assert.deepEqual(sizes, [16, 16]);
});

test("a round of H local steps waits H times a step's deadlines before leaving a member out", () => {
  const leftOutAfter = (every: number): number => {
    const d = new Driver(["a", "b"], testSpec({ stepDeadlineMs: 1000, sync: { every } }));
    d.place(["a", "b"]);
    d.done("a");
    let waited = 0;
    while (d.m.phase !== "committing" && waited < 60_000) {
      d.tick();
      waited += 200;
    }
    return waited;
  };
  const one = leftOutAfter(1);
  const four = leftOutAfter(4);
  assert.ok(one <= 1200, `a step: left out after ${one} ms (deadline 1 s)`);
  assert.ok(four > 3800 && four <= 4200, `a round of 4: left out after ${four} ms (4 × 1 s)`);
});
