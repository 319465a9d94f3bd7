/**
 * The range ledger of a distributed prediction run, as a pure machine: ranges go to ready nodes a
 * few at a time within a window, a dead node's ranges are handed out again, the first answer of a
 * range from a node it was sent to is the one kept, everything else is ignored, and ranges are
 * released in input order exactly once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { RangeLedger, type LedgerCommand } from "../../actors/predictor/ledger.js";

type Send = Extract<LedgerCommand, { kind: "send" }>;
const sends = (cs: LedgerCommand[]): Send[] => cs.filter((c): c is Send => c.kind === "send");
const releases = (cs: LedgerCommand[]): number[] =>
  cs.flatMap((c) => (c.kind === "release" ? [c.range] : []));

function ledger(
  records = 1000,
  over: Partial<ConstructorParameters<typeof RangeLedger>[0]> = {},
): RangeLedger {
  return new RangeLedger({ records, rangeSize: 100, perNode: 2, window: 6, timeoutMs: 1000, ...over });
}

test("ranges cover the input without gap or overlap; the last one is short", () => {
  const l = ledger(950, { window: 100, perNode: 100 });
  const out = sends(l.nodeReady("a", 0));
  assert.deepEqual(
    out.map((s) => [s.start, s.end]),
    Array.from({ length: 10 }, (_, i) => [i * 100, Math.min(950, i * 100 + 100)]),
  );
});

test("at most perNode ranges in flight per node, and none past the window", () => {
  const l = ledger(1000, { perNode: 2, window: 5 });
  const a = sends(l.nodeReady("a", 0));
  const b = sends(l.nodeReady("b", 0));
  const c = sends(l.nodeReady("c", 0));
  assert.deepEqual(
    [a.length, b.length, c.length],
    [2, 2, 1],
    "the window of 5 bounds what is handed out (and so the results held)",
  );
  // Answering a range past the head releases nothing and hands out nothing past the window.
  const r = l.answered(c[0]!.node, c[0]!.range, c[0]!.attempt, 1);
  assert.equal(r.accepted, true);
  assert.deepEqual(releases(r.commands), []);
  assert.deepEqual(sends(r.commands), []);
});

test("results are released in input order, each once, whatever order answers come in", () => {
  const l = ledger(600, { perNode: 10, window: 10 });
  const out = sends(l.nodeReady("a", 0));
  const released: number[] = [];
  for (const s of [...out].reverse())
    released.push(...releases(l.answered("a", s.range, s.attempt, 1).commands));
  assert.deepEqual(released, [0, 1, 2, 3, 4, 5]);
  assert.equal(l.done, true);
  assert.equal(l.stats().recordsReleased, 600);
});

test("a dead node's unanswered ranges go to the others; its late answers are ignored", () => {
  const l = ledger(400, { perNode: 2, window: 4 });
  const a = sends(l.nodeReady("a", 0));
  const b = sends(l.nodeReady("b", 0));
  assert.deepEqual([a.length, b.length], [2, 2]);
  // b answers one of its two, then dies.
  assert.equal(l.answered("b", b[0]!.range, b[0]!.attempt, 1).accepted, true);
  const redo = sends(l.nodesAlive(["a"], 2));
  assert.deepEqual(redo, [], "a is full: the range waits");
  const a0 = l.answered("a", a[0]!.range, a[0]!.attempt, 3);
  const moved = sends(a0.commands);
  assert.deepEqual(
    moved.map((s) => [s.node, s.range]),
    [["a", b[1]!.range]],
    "b's unanswered range goes to a",
  );
  assert.notEqual(moved[0]!.attempt, b[1]!.attempt);
  // b's late answer (its system delivered it after all) is not taken: b is no member any more.
  assert.equal(l.answered("b", b[1]!.range, b[1]!.attempt, 4).accepted, false);
  assert.equal(l.answered("a", moved[0]!.range, moved[0]!.attempt, 5).accepted, true);
  const s = l.stats();
  assert.equal(s.redone, 1);
  assert.deepEqual(s.lost, ["b"]);
  assert.equal(s.ignored, 1);
  assert.deepEqual(s.nodes.b, { taken: 2, answered: 1 });
});

test("an answer from a node the attempt was not sent to, or for an attempt never sent, is ignored", () => {
  const l = ledger(200, { perNode: 1 });
  const [a] = sends(l.nodeReady("a", 0));
  sends(l.nodeReady("b", 0));
  assert.equal(l.answered("b", a!.range, a!.attempt, 1).accepted, false, "b speaks for a's attempt");
  assert.equal(l.answered("a", a!.range, a!.attempt + 100, 1).accepted, false, "an attempt never sent");
  assert.equal(l.answered("a", 99, 0, 1).accepted, false, "a range that does not exist");
  assert.equal(l.stats().ignored, 3);
  assert.equal(l.answered("a", a!.range, a!.attempt, 2).accepted, true);
  assert.equal(l.answered("a", a!.range, a!.attempt, 2).accepted, false, "a duplicate");
});

test("a timed-out range goes out again; whichever attempt answers first is kept, the other ignored", () => {
  const l = ledger(100, { perNode: 1, timeoutMs: 1000 });
  const [first] = sends(l.nodeReady("a", 0));
  sends(l.nodeReady("b", 0));
  assert.deepEqual(sends(l.tick(999)), [], "not yet due");
  const [again] = sends(l.tick(1000));
  assert.equal(again?.node, "b", "the least busy node takes it");
  assert.equal(l.stats().timeouts, 1);
  // The slow node answers after all: its answer still counts, and b's is then a duplicate.
  const r = l.answered("a", first!.range, first!.attempt, 1200);
  assert.equal(r.accepted, true);
  assert.deepEqual(releases(r.commands), [0]);
  assert.equal(l.answered("b", again!.range, again!.attempt, 1300).accepted, false);
  assert.equal(l.done, true);
});

test("a failed request goes out again; a node that fails is sent nothing more", () => {
  const l = ledger(300, { perNode: 1, window: 3 });
  const [a] = sends(l.nodeReady("a", 0));
  const [b] = sends(l.nodeReady("b", 0));
  const retry = sends(l.attemptFailed(a!.range, a!.attempt, 1));
  assert.deepEqual(
    retry.map((s) => [s.node, s.range]),
    [["a", a!.range]],
  );
  const moved = sends(l.nodeFailed("a", 2));
  assert.deepEqual(moved, [], "b is busy with its own range");
  const next = sends(l.answered("b", b!.range, b!.attempt, 3).commands);
  assert.deepEqual(
    next.map((s) => [s.node, s.range]),
    [["b", a!.range]],
  );
  assert.deepEqual(l.readyNodes, ["b"]);
});

test("exactly once under churn: every range released once, in order, with nodes dying and answers repeated", () => {
  const l = ledger(5000, { rangeSize: 50, perNode: 3, window: 8, timeoutMs: 500 });
  const nodes = ["a", "b", "c", "d"];
  let alive = [...nodes];
  const inFlight: Send[] = [];
  const released: number[] = [];
  const run = (cs: LedgerCommand[]) => {
    inFlight.push(...sends(cs));
    released.push(...releases(cs));
  };
  for (const n of nodes) run(l.nodeReady(n, 0));
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) % 1000) / 1000;
  for (let now = 1; !l.done && now < 100_000; now += 10) {
    if (now === 51) alive = alive.filter((n) => n !== "b");
    if (now === 151) alive = alive.filter((n) => n !== "d");
    run(l.nodesAlive(alive, now));
    // Answer some in flight, in random order; dead nodes' answers come too (and must be ignored).
    for (let k = 0; k < 2 && inFlight.length > 0; k++) {
      const [s] = inFlight.splice(Math.floor(rand() * inFlight.length), 1);
      run(l.answered(s!.node, s!.range, s!.attempt, now).commands);
      if (rand() < 0.2) run(l.answered(s!.node, s!.range, s!.attempt, now).commands);
    }
    run(l.tick(now));
  }
  assert.equal(l.done, true);
  assert.deepEqual(
    released,
    Array.from({ length: 100 }, (_, i) => i),
  );
  const s = l.stats();
  assert.deepEqual(s.lost.sort(), ["b", "d"]);
  assert.ok(s.redone >= 1, `redone ${s.redone}`);
  assert.equal(s.recordsReleased, 5000);
});
