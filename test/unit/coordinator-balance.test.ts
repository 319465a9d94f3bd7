/**
 * `balance: "throughput"` in the coordinator machine: the shares told follow the members' answers,
 * change only when a step is told, always sum to the global batch, are announced with each step,
 * persisted (a successor goes on from them), and only answers that count are measured.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeJob, encodeJob } from "../../actors/coordinator/codec.js";
import { Driver, testSpec } from "./coordinator-harness.js";

type StepTell = { node: string; step: number; attempt: number; size: number };

/** Takes the trainer.step tells collected; every other tell stays in place. */
function stepTells(d: Driver): StepTell[] {
  const tells = d.take("tell");
  d.out.push(...tells.filter((c) => c.msg.type !== "trainer.step"));
  return tells.flatMap((c) =>
    c.msg.type === "trainer.step"
      ? [{ node: c.to.split("/")[0] ?? "", step: c.msg.step, attempt: c.msg.attempt, size: c.msg.batchSize }]
      : [],
  );
}

/** `node` answers its part of a step: `n` samples computed in `computeMs`. */
function answer(d: Driver, t: StepTell, computeMs: number, over: { attempt?: number } = {}): void {
  const batch = d.batch(t.node, t.size);
  d.send({
    type: "message",
    msg: {
      type: "coord.done",
      term: d.m.s.term,
      step: t.step,
      attempt: over.attempt ?? t.attempt,
      member: t.node,
      batch,
      n: batch.end - batch.start,
      lossSum: 1,
      computeMs,
    },
    from: `${t.node}/${d.m.cfg.job}.trainer`,
  });
}

/** Runs `steps` steps where member a takes 3 ms a sample and b 1 ms; returns each step's shares. */
function run(
  balance: "equal" | "throughput",
  steps: number,
): { d: Driver; shares: Array<Record<string, number>> } {
  const d = new Driver(["a", "b"], testSpec({ balance, globalBatch: 16, epochs: 20 }));
  d.place(["a", "b"]);
  const shares: Array<Record<string, number>> = [];
  for (let s = 0; s < steps; s++) {
    const tells = stepTells(d);
    assert.equal(tells.length, 2, `step ${s + 1} told to both members`);
    shares.push(Object.fromEntries(tells.map((t) => [t.node, t.size])));
    for (const t of tells) answer(d, t, t.size * (t.node === "a" ? 3 : 1));
    d.applyAll();
    d.persisted();
  }
  return { d, shares };
}

test("throughput shares follow the answers, sum to the global batch, and are announced with the step", () => {
  const { d, shares } = run("throughput", 12);
  assert.deepEqual(shares[0], { a: 8, b: 8 }, "equal shares before any measurement");
  for (const s of shares) assert.equal((s.a ?? 0) + (s.b ?? 0), 16);
  const last = shares.at(-1) ?? {};
  // a is three times slower: its ideal share is a quarter of the batch.
  assert.equal(last.a, 4, JSON.stringify(shares));
  const events = d.published("job.step").flatMap((c) => (c.event.type === "job.step" ? [c.event] : []));
  const lastEvent = events.at(-1);
  assert.deepEqual(lastEvent?.shares, [
    { node: "a", n: 4 },
    { node: "b", n: 12 },
  ]);
  const balance = d.m.s.p?.balance ?? [];
  assert.deepEqual(
    balance.map((e) => [e.node, e.share]),
    [
      ["a", 4],
      ["b", 12],
    ],
  );
  assert.ok((balance[1]?.rate ?? 0) > 2.5 * (balance[0]?.rate ?? 0), JSON.stringify(balance));
});

test("equal balance ignores the measured speed and announces no shares", () => {
  const { d, shares } = run("equal", 6);
  for (const s of shares) assert.deepEqual(s, { a: 8, b: 8 });
  assert.equal(d.m.s.p?.balance, undefined);
  for (const c of d.published("job.step"))
    assert.ok(c.event.type === "job.step" && c.event.shares === undefined);
});

test("the balancing state is persisted and decodes (and older records without it still do)", () => {
  const { d } = run("throughput", 8);
  const p = d.m.s.p;
  assert.ok(p?.balance);
  const back = decodeJob(encodeJob(p));
  assert.deepEqual(back.balance, p.balance);
  const { balance: _dropped, ...older } = p;
  void _dropped;
  assert.equal(decodeJob(encodeJob(older)).balance, undefined);
  assert.throws(() => decodeJob(encodeJob({ ...p, balance: [{ node: "a", rate: -1, share: 3 }] })));
});

test("only answers that count are measured: one of an aborted attempt changes nothing", () => {
  const { d } = run("throughput", 4);
  const before = structuredClone(d.m.s.p?.balance);
  const tells = stepTells(d);
  const first = tells[0];
  assert.ok(first);
  // A forged fast answer for an attempt that is not in flight: ignored, and not measured.
  const ignored = d.m.s.ignored;
  answer(d, first, 0.001, { attempt: first.attempt + 5 });
  assert.equal(d.m.s.ignored, ignored + 1);
  assert.deepEqual(d.m.s.p?.balance, before);
});

test("a successor that takes over goes on from the persisted shares", () => {
  const { d: old, shares } = run("throughput", 10);
  const before = shares.at(-1);
  assert.ok(before && before.a !== before.b, JSON.stringify(shares));
  const record = old.m.s.p;
  assert.ok(record);
  const saved = decodeJob(encodeJob(record));
  const d = new Driver(["a", "b"], testSpec({ balance: "throughput", globalBatch: 16, epochs: 20 }), "b");
  d.send({ type: "acquired", term: 9 });
  d.send({ type: "claimed", gen: d.gen, saved });
  const ab = d.one("abortReducers");
  d.send({ type: "reducersAborted", gen: d.gen, ok: ab.targets.map(() => true), recovery: ab.recovery });
  const rb = d.one("rebuildReducers");
  d.send({
    type: "reducersRebuilt",
    gen: d.gen,
    addresses: ab.targets.map((t, r) => t ?? `b/r${r}`),
    replaced: rb.spawns.length,
    reducerGen: 1,
  });
  const told = stepTells(d);
  assert.equal(told.length, 2);
  const after = Object.fromEntries(told.map((t) => [t.node, t.size]));
  // Not reset to 8/8: the successor's first shares are the rates it inherited, within the growth bound.
  assert.ok((after.a ?? 0) < 8 && (after.a ?? 0) + (after.b ?? 0) === 16, JSON.stringify({ before, after }));
});
