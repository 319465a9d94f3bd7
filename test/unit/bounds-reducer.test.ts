import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_MAX_MEMBERS, STEPS_AHEAD } from "../../actors/reducer/buffers.js";
import {
  initialReducerState,
  reduce,
  type ReducerConfig,
  type ReducerEffect,
  type ReducerEvent,
  type ReducerState,
} from "../../actors/reducer/machine.js";

const LENGTH = 16;
const COORD = "node-a/job/coordinator";

function config(over: Partial<ReducerConfig> = {}): ReducerConfig {
  return { r: 0, offset: 0, length: LENGTH, optimizer: { name: "sgd", lr: 0.1 }, maxMembers: 3, ...over };
}

function loaded(cfg: ReducerConfig, version = 0): ReducerState {
  const state = initialReducerState(cfg);
  reduce(
    cfg,
    state,
    { type: "load", term: 1, version, data: new Float32Array(LENGTH), checkpoint: undefined },
    0,
  );
  return state;
}

function grad(member: string, step: number, attempt = 0): ReducerEvent {
  return { type: "grad", step, attempt, member, n: 1, data: new Float32Array(LENGTH).fill(1) };
}

/** The `ignore` reasons among effects: what the shell counts in flock_actor_ignored_messages_total. */
function ignored(effects: ReducerEffect[]): string[] {
  return effects.flatMap((e) => (e.kind === "ignore" ? [e.reason] : []));
}

/** Slices held, over every step, attempt and member. */
function held(state: ReducerState): number {
  let n = 0;
  for (const byAttempt of state.buffers.values()) for (const m of byAttempt.values()) n += m.size;
  return n;
}

test("slices before a load, or beyond the step after the one in flight, are not held", () => {
  const cfg = config();
  const fresh = initialReducerState(cfg);
  assert.deepEqual(ignored(reduce(cfg, fresh, grad("a", 1), 0)), ["not-loaded"]);
  assert.equal(held(fresh), 0);
  const state = loaded(cfg, 10);
  assert.equal(STEPS_AHEAD, 2);
  assert.deepEqual(ignored(reduce(cfg, state, grad("a", 11), 0)), []);
  assert.deepEqual(ignored(reduce(cfg, state, grad("a", 12), 0)), []);
  for (const step of [13, 14, 1_000_000, 2 ** 31])
    assert.deepEqual(ignored(reduce(cfg, state, grad("a", step), 0)), ["future-step"]);
  assert.deepEqual(ignored(reduce(cfg, state, grad("a", 10), 0)), ["stale-step"]);
  assert.deepEqual([...state.buffers.keys()], [11, 12]);
});

test("a step keeps only its newest attempt (and the one a commit waits for)", () => {
  const cfg = config();
  const state = loaded(cfg, 0);
  reduce(cfg, state, grad("a", 1, 0), 0);
  reduce(cfg, state, grad("b", 1, 0), 0);
  // A redo raised the attempt: the old attempt's two slices go, each counted.
  assert.deepEqual(ignored(reduce(cfg, state, grad("a", 1, 1), 0)), [
    "superseded-attempt",
    "superseded-attempt",
  ]);
  assert.deepEqual(ignored(reduce(cfg, state, grad("b", 1, 0), 0)), ["stale-attempt"]);
  assert.deepEqual([...(state.buffers.get(1)?.keys() ?? [])], [1]);
  // Waiting for attempt 1 (b missing), a newer attempt's slice does not push out the waited one.
  reduce(
    cfg,
    state,
    { type: "commit", term: 1, step: 1, attempt: 1, contributors: ["a", "b"], total: 2, replyTo: COORD },
    0,
  );
  assert.deepEqual(ignored(reduce(cfg, state, grad("c", 1, 5), 0)), []);
  assert.deepEqual([...(state.buffers.get(1)?.keys() ?? [])].sort(), [1, 5]);
  const out = reduce(cfg, state, grad("b", 1, 1), 0);
  assert.ok(
    out.some((e) => e.kind === "tell" && e.msg.type === "coord.applied"),
    "the waited commit applies",
  );
  assert.equal(held(state), 0);
});

test("at most maxMembers members per attempt before the commit, and only the commit set after it", () => {
  const cfg = config({ maxMembers: 3 });
  const state = loaded(cfg, 0);
  for (const m of ["a", "b", "c"]) assert.deepEqual(ignored(reduce(cfg, state, grad(m, 1), 0)), []);
  assert.deepEqual(ignored(reduce(cfg, state, grad("forged-1", 1), 0)), ["too-many-members"]);
  assert.deepEqual(ignored(reduce(cfg, state, grad("a", 1), 0)), [], "a member may resend its slice");
  assert.equal(held(state), 3);
  reduce(
    cfg,
    state,
    {
      type: "commit",
      term: 1,
      step: 1,
      attempt: 0,
      contributors: ["a", "b", "c", "d"],
      total: 4,
      replyTo: COORD,
    },
    0,
  );
  assert.deepEqual(ignored(reduce(cfg, state, grad("x", 1), 0)), ["not-contributor"]);
  assert.equal(DEFAULT_MAX_MEMBERS, 1024);
});

test("a flood of forged slices leaves the buffers within their bounds", () => {
  const cfg = config({ maxMembers: 4 });
  const state = loaded(cfg, 5);
  let refused = 0;
  for (let i = 0; i < 10_000; i++) {
    const out = reduce(cfg, state, grad(`m${i % 50}`, 4 + (i % 7), i % 3), 0);
    refused += ignored(out).length;
  }
  // Steps 6 and 7, one attempt each, 4 members each.
  assert.ok(held(state) <= STEPS_AHEAD * 4, `held ${held(state)}`);
  assert.ok(refused > 9_000);
});
