/**
 * Bounded staleness in the coordinator machine (`sync: { staleness: 1 }`): the next step starts
 * while one commits and is computed on the version before the one being committed; commits stay
 * in order, each sample counts once, and whatever breaks a step drops the step started ahead too.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Command } from "../../actors/coordinator/model.js";
import { Driver, member, prepared, testSpec } from "./coordinator-harness.js";

type Tell = Extract<Command, { kind: "tell" }>;

/** Takes the collected tells, split: trainer steps (step, on, attempt) and the rest, left in place. */
function steps(d: Driver): Array<{ to: string; step: number; on: number | undefined; attempt: number }> {
  const tells = d.take("tell");
  const out = tells.flatMap((c: Tell) =>
    c.msg.type === "trainer.step"
      ? [{ to: c.to, step: c.msg.step, on: c.msg.on, attempt: c.msg.attempt }]
      : [],
  );
  d.out.push(...tells.filter((c) => c.msg.type !== "trainer.step"));
  return out;
}

/** Every reducer applies the commit in flight; the other tells collected stay in place. */
function apply(d: Driver): void {
  const tells = d.take("tell");
  d.out.push(...tells.filter((c) => c.msg.type === "reducer.commit"));
  d.applyAll();
  d.out.push(...tells.filter((c) => c.msg.type !== "reducer.commit"));
}

function staleDriver(nodes = ["a", "b"]): Driver {
  const d = new Driver(nodes, testSpec({ sync: { staleness: 1 } }));
  d.place(nodes);
  return d;
}

test("the next step starts while one commits, on the version before; its answers wait for the commit", () => {
  const d = staleDriver();
  assert.deepEqual(
    steps(d).map((s) => [s.step, s.on]),
    [
      [1, 0],
      [1, 0],
    ],
  );
  d.done("a");
  d.done("b");
  assert.equal(d.m.phase, "committing");
  assert.deepEqual(
    steps(d).map((s) => [s.step, s.on, s.attempt]),
    [
      [2, 0, 0],
      [2, 0, 0],
    ],
    "step 2 started ahead, on version 0 (step 1 is not applied yet)",
  );
  d.done("a", 4, { step: 2 });
  d.done("b", 4, { step: 2 });
  assert.equal(d.m.phase, "committing", "step 2's answers are held while step 1 commits");
  assert.equal(d.m.s.p?.step, 0);
  apply(d);
  assert.equal(d.m.s.p?.step, 1);
  d.persisted();
  // Step 2 was complete when step 1 committed: it commits at once, and step 3 starts ahead of it.
  assert.equal(d.m.phase, "committing");
  const tells = d.take("tell");
  assert.deepEqual(
    tells.flatMap((c) => (c.msg.type === "reducer.commit" ? [c.msg.step] : [])),
    [2, 2],
  );
  d.out.push(...tells);
  assert.deepEqual(
    steps(d).map((s) => [s.step, s.on]),
    [
      [3, 1],
      [3, 1],
    ],
  );
  apply(d);
  assert.equal(d.m.s.p?.step, 2);
  assert.equal(d.m.s.ledger?.committedThisEpoch, 16, "both steps' batches, once each");
});

test("a whole job under staleness commits every sample once, in order, and finishes", () => {
  const d = new Driver(["a", "b"], testSpec({ sync: { staleness: 1 }, epochs: 2 }));
  d.place(["a", "b"]);
  const committed: number[] = [];
  for (let round = 0; round < 40 && d.m.phase !== "finishing" && d.m.phase !== "done"; round++) {
    d.persisted();
    for (const s of steps(d)) d.done(s.to.split("/")[0]!, 4, { step: s.step });
    d.persisted();
    const before = d.m.s.p?.step ?? 0;
    if (d.m.phase === "committing") apply(d);
    const after = d.m.s.p?.step ?? 0;
    if (after > before) committed.push(after);
  }
  assert.equal(d.m.phase, "finishing");
  assert.deepEqual(
    committed,
    committed.map((_, i) => i + 1),
    "each step committed once, in order",
  );
  assert.deepEqual(d.m.s.ledger?.samplesPerEpoch(), [32, 32]);
});

test("a contributor's death while committing drops the step started ahead and redoes both", () => {
  const d = staleDriver(["a", "b", "c"]);
  steps(d);
  d.done("a");
  d.done("b");
  d.done("c");
  assert.equal(steps(d).length, 3, "step 2 started ahead");
  d.done("a", 4, { step: 2 });
  d.kill("c");
  assert.equal(d.m.phase, "recovering");
  d.one("abortReducers");
  d.take("tell"); // the aborted attempt's commit
  d.send({ type: "reducersAborted", gen: d.gen, ok: [true, true] });
  assert.deepEqual(
    steps(d).map((s) => [s.to, s.step, s.attempt]),
    [
      ["a/job-j.trainer", 1, 1],
      ["b/job-j.trainer", 1, 1],
    ],
  );
  // Every batch of the dropped steps is back in the pool: the epoch still commits every sample once.
  const ledger = d.m.s.ledger!;
  assert.equal(ledger.committedThisEpoch, 0);
  d.done("a", 8);
  d.done("b", 8);
  d.persisted();
  apply(d);
  assert.equal(d.m.s.p?.step, 1);
  assert.equal(ledger.committedThisEpoch, 16);
});

test("a step started ahead that got no samples (the step before took the epoch's last) is started afresh", () => {
  const d = new Driver(["a", "b"], testSpec({ sync: { staleness: 1 } }));
  d.place(["a", "b"]);
  steps(d);
  // 32 samples: 16 + 16 leave nothing for the step started ahead.
  d.done("a", 16);
  d.done("b", 16);
  assert.equal(steps(d).length, 2);
  d.done("a", 0, { step: 2 });
  d.done("b", 0, { step: 2 });
  const attempt = d.m.s.attempt;
  apply(d);
  d.persisted();
  assert.equal(d.m.s.p?.step, 1);
  assert.equal(d.m.phase, "finishing", "one epoch: done, no empty step committed");
  assert.equal(d.m.s.attempt, attempt + 1, "the dropped step's answers are told apart");
});

test("joiners ready to be admitted: no step starts ahead; they join at the boundary", () => {
  const d = new Driver(["a", "b"], testSpec({ sync: { staleness: 1 } }));
  d.place(["a", "b"]);
  steps(d);
  d.alive.push({ ...d.alive[0]!, node: "c" });
  d.send({ type: "membership", event: { kind: "joined", node: d.alive[2]!, epoch: 2 } });
  const admit = d.one("admitJoiner");
  d.send({
    type: "joinerPrepared",
    gen: d.gen,
    node: "c",
    member: member("c"),
    prepared: prepared(),
    restores: admit.restores,
  });
  d.done("a");
  d.done("b");
  assert.deepEqual(steps(d), [], "nothing ahead while a joiner waits");
  apply(d);
  d.persisted();
  assert.deepEqual(
    steps(d)
      .map((s) => s.to)
      .sort(),
    ["a/job-j.trainer", "b/job-j.trainer", "c/job-j.trainer"],
  );
});

test("synchronous jobs never start a step ahead and send no `on`", () => {
  const d = new Driver(["a", "b"]);
  d.place(["a", "b"]);
  assert.ok(steps(d).every((s) => s.on === undefined));
  d.done("a");
  d.done("b");
  assert.deepEqual(steps(d), []);
});

test("after a redo, the step started ahead at the new attempt is answered and committed", () => {
  const d = staleDriver(["a", "b", "c"]);
  steps(d);
  d.done("a");
  d.done("b");
  d.done("c");
  steps(d);
  d.kill("c");
  d.one("abortReducers");
  d.take("tell");
  d.send({ type: "reducersAborted", gen: d.gen, ok: [true, true] });
  assert.deepEqual(
    steps(d).map((s) => [s.step, s.attempt]),
    [
      [1, 1],
      [1, 1],
    ],
  );
  d.done("a");
  d.done("b");
  d.persisted();
  assert.deepEqual(
    steps(d).map((s) => [s.step, s.attempt]),
    [
      [2, 1],
      [2, 1],
    ],
  );
  apply(d);
  d.persisted();
  // Step 1 is applied before step 2's answers come: they still count (the attempt did not reset).
  d.done("a", 4, { step: 2 });
  d.done("b", 4, { step: 2 });
  assert.equal(d.m.phase, "committing");
  apply(d);
  assert.equal(d.m.s.p?.step, 2);
  assert.equal(d.m.s.ignored, 0);
});
