/**
 * Throughput balancing (`actors/coordinator/balance.ts`): shares are integers summing to the
 * global batch, follow the members' measured samples/s, are deterministic, and a member that lies
 * about its speed gains at most {@link MAX_GROWTH}× a step.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MAX_GROWTH,
  MIN_SHARE_FRACTION,
  balancedShares,
  observe,
  type BalanceState,
} from "../../actors/coordinator/balance.js";

type Shares = Record<string, number>;

function told(members: string[], G: number, state: BalanceState): { shares: Shares; state: BalanceState } {
  const r = balancedShares(members, G, state);
  const sum = r.shares.reduce((a, s) => a + s.size, 0);
  assert.equal(sum, G, `shares ${JSON.stringify(r.shares)} sum to the global batch`);
  return { shares: Object.fromEntries(r.shares.map((s) => [s.node, s.size])), state: r.state };
}

/**
 * Runs `steps` steps where member i computes a sample in `msPerSample[i]` ms plus `fixedMs`:
 * each step tells the shares, then every member answers honestly. Returns the last shares and
 * the step times (the slowest member's time each step).
 */
function simulate(
  msPerSample: Record<string, number>,
  G: number,
  steps: number,
  fixedMs = 1,
): { shares: Shares; stepMs: number[]; state: BalanceState } {
  let state: BalanceState = [];
  let shares: Shares = {};
  const stepMs: number[] = [];
  const members = Object.keys(msPerSample);
  for (let s = 0; s < steps; s++) {
    ({ shares, state } = told(members, G, state));
    let slowest = 0;
    for (const node of members) {
      const n = shares[node] ?? 0;
      const ms = fixedMs + n * (msPerSample[node] ?? 0);
      slowest = Math.max(slowest, ms);
      state = observe(state, { node, n, computeMs: ms, observedMs: ms });
    }
    stepMs.push(slowest);
  }
  return { shares, stepMs, state };
}

test("equal shares until a member is measured, with the remainder to the first nodes", () => {
  const { shares } = told(["b", "a", "c"], 64, []);
  assert.deepEqual(shares, { a: 22, b: 21, c: 21 });
});

test("shares follow throughput: a member three times slower ends with about a quarter", () => {
  const { shares, stepMs } = simulate({ "node-1": 0.3, "node-2": 0.1 }, 64, 30);
  // Ideal split with 1 ms fixed per step: 0.3·n1 = 0.1·(64 − n1) → n1 = 16.
  assert.ok(Math.abs((shares["node-1"] ?? 0) - 16) <= 1, JSON.stringify(shares));
  const equalMs = 1 + 32 * 0.3;
  const last = stepMs.at(-1) ?? Infinity;
  assert.ok(last <= 0.6 * equalMs, `balanced step ${last} ms vs equal ${equalMs} ms`);
});

test("deterministic: the same inputs give the same shares, equal rates split by node id", () => {
  let state: BalanceState = [];
  for (const node of ["y", "x"]) state = observe(state, { node, n: 10, computeMs: 10 });
  const a = told(["x", "y"], 33, state).shares;
  const b = told(["y", "x"], 33, state).shares;
  assert.deepEqual(a, b);
  assert.deepEqual(a, { x: 17, y: 16 });
});

test("answers that say nothing are ignored: no samples, zero, negative or non-finite times", () => {
  const base = observe([], { node: "a", n: 10, computeMs: 100 });
  for (const bad of [
    { n: 0, computeMs: 10 },
    { n: 10, computeMs: 0 },
    { n: 10, computeMs: -5 },
    { n: 10, computeMs: NaN },
    { n: 10, computeMs: Infinity },
    { n: NaN, computeMs: 10 },
  ])
    assert.deepEqual(observe(base, { node: "a", ...bad }), base, JSON.stringify(bad));
});

test("a lying member gains at most ×1.5 a step and keeps far from the whole batch", () => {
  const G = 64;
  let state: BalanceState = [];
  let shares: Shares;
  ({ state } = told(["honest", "liar"], G, state));
  for (const node of ["honest", "liar"])
    state = observe(state, { node, n: 32, computeMs: 32, observedMs: 33 });
  ({ shares, state } = told(["honest", "liar"], G, state));
  assert.deepEqual(shares, { honest: 32, liar: 32 });
  // One absurd claim: 10⁹ samples in a nanosecond, answered after 33 ms as seen by the coordinator.
  state = observe(state, { node: "liar", n: 1e9, computeMs: 1e-6, observedMs: 33 });
  state = observe(state, { node: "honest", n: 32, computeMs: 32, observedMs: 33 });
  const entry = state.find((e) => e.node === "liar");
  // n is clamped to the 32 it was told, the time to half the observed 33 ms: at most 2× its rate.
  assert.ok(entry && entry.rate <= 1.01 * (0.7 * 1000 + 0.3 * 2000), JSON.stringify(entry));
  ({ shares } = told(["honest", "liar"], G, state));
  assert.ok((shares.liar ?? 0) <= 32 * MAX_GROWTH, JSON.stringify(shares));
  assert.ok((shares.honest ?? 0) >= G - 32 * MAX_GROWTH, JSON.stringify(shares));

  // Lying every step without the floor of an observed time: the share still grows ×1.5 at most a
  // step, and the honest member keeps its minimum share.
  let prev = shares.liar ?? 0;
  for (let s = 0; s < 20; s++) {
    state = observe(state, { node: "liar", n: prev, computeMs: 1e-9 });
    state = observe(state, { node: "honest", n: shares.honest ?? 0, computeMs: 32 });
    ({ shares, state } = told(["honest", "liar"], G, state));
    assert.ok(
      (shares.liar ?? 0) <= Math.max(prev + 1, Math.floor(prev * MAX_GROWTH)),
      JSON.stringify(shares),
    );
    prev = shares.liar ?? 0;
  }
  const min = Math.max(1, Math.floor((MIN_SHARE_FRACTION * G) / 2));
  assert.equal(shares.honest, min, "the honest member keeps the minimum share");
});

test("a slow member keeps a minimum share, so it is still measured and can win its share back", () => {
  const slow = simulate({ a: 10, b: 0.1 }, 64, 30);
  assert.equal(slow.shares.a, Math.floor((MIN_SHARE_FRACTION * 64) / 2));
  let { state } = slow;
  let shares = slow.shares;
  for (let s = 0; s < 30; s++) {
    for (const node of ["a", "b"]) {
      const n = shares[node] ?? 0;
      state = observe(state, { node, n, computeMs: 1 + 0.1 * n });
    }
    ({ shares, state } = told(["a", "b"], 64, state));
  }
  assert.ok(Math.abs((shares.a ?? 0) - 32) <= 1, `recovered to ${JSON.stringify(shares)}`);
});

test("a member that joins starts at the mean rate; one that leaves is dropped from the state", () => {
  const { state } = simulate({ a: 0.3, b: 0.1 }, 60, 30);
  const joined = told(["a", "b", "c"], 60, state);
  // At the mean rate c takes the equal share of the three (its cap for a first share).
  assert.equal(joined.shares.c, 20, JSON.stringify(joined.shares));
  assert.ok((joined.shares.a ?? 0) < (joined.shares.b ?? 0), JSON.stringify(joined.shares));
  const left = told(["b", "c"], 60, joined.state);
  assert.deepEqual(
    left.state.map((e) => e.node),
    ["b", "c"],
  );
  assert.equal((left.shares.b ?? 0) + (left.shares.c ?? 0), 60);
});

test("a batch smaller than the member count is split evenly (some members get none)", () => {
  let state: BalanceState = [];
  for (const node of ["a", "b", "c"])
    state = observe(state, { node, n: 1, computeMs: node === "a" ? 100 : 1 });
  assert.deepEqual(told(["a", "b", "c"], 2, state).shares, { a: 1, b: 1, c: 0 });
});

test("shares stay within bounds and sum exactly over many random rates", () => {
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let trial = 0; trial < 200; trial++) {
    const k = 1 + Math.floor(rand() * 6);
    const G = k + Math.floor(rand() * 500);
    const members = Array.from({ length: k }, (_, i) => `n${i}`);
    let state: BalanceState = [];
    for (let s = 0; s < 5; s++) {
      const r = told(members, G, state);
      for (const node of members)
        r.state = observe(r.state, { node, n: r.shares[node] ?? 0, computeMs: 1 + rand() * 100 });
      for (const node of members) assert.ok((r.shares[node] ?? 0) >= 1, JSON.stringify(r.shares));
      state = r.state;
    }
  }
});
