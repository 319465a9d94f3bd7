import { test } from "node:test";
import assert from "node:assert/strict";
import type { ParamsSlice } from "../../messages/index.js";
import type { StartStep } from "../../actors/trainer/protocol.js";
import {
  addSlice,
  agreedVersion,
  decideStep,
  holdVersion,
  initialVersions,
  paramsOf,
  RESUME_MIN_WAIT_MS,
  resumeDue,
  serveFetch,
  startPrepare,
  takeFetched,
  takeRunnable,
  type TrainerVersions,
} from "../../actors/trainer/versions.js";

const BOUNDS = [0, 3, 5];
const REDUCERS = { addresses: ["a/r0", "b/r1"], bounds: BOUNDS };
const COORD = "a/coordinator";

function prepared(version = 0, term = 1, keep = 2): TrainerVersions {
  const s = initialVersions(keep);
  startPrepare(s, { type: "trainer.prepare", term, version, reducers: REDUCERS });
  holdVersion(s, version, Float32Array.from([version, version, version, version, version]));
  s.term = term;
  return s;
}

function slice(version: number, r: 0 | 1, fill: number, term = 1): ParamsSlice {
  const offset = BOUNDS[r]!;
  const length = BOUNDS[r + 1]! - offset;
  return {
    type: "params.slice",
    job: "j",
    term,
    version,
    attempt: 0,
    r,
    offset,
    data: new Float32Array(length).fill(fill),
  };
}

function step(n: number, term = 1, attempt = 0, on?: number): StartStep {
  return {
    type: "trainer.step",
    term,
    step: n,
    ...(on === undefined ? {} : { on }),
    attempt,
    batchSize: 4,
    loader: "a/loader",
    reducers: REDUCERS,
    reportHash: false,
  };
}

test("prepare: version 0 initialises, a joiner fetches, a trainer holding the version keeps it, one ahead drops its versions", () => {
  const fresh = initialVersions();
  assert.deepEqual(
    startPrepare(fresh, { type: "trainer.prepare", term: 1, version: 0, reducers: REDUCERS }),
    {
      kind: "init",
    },
  );
  const joiner = initialVersions();
  assert.deepEqual(
    startPrepare(joiner, { type: "trainer.prepare", term: 1, version: 7, reducers: REDUCERS }),
    {
      kind: "fetch",
      atLeast: 7,
    },
  );
  const holder = prepared(7);
  assert.deepEqual(
    startPrepare(holder, { type: "trainer.prepare", term: 2, version: 7, reducers: REDUCERS }),
    {
      kind: "hold",
    },
  );
  // The job was restored from the checkpoint of step 5: versions 6 and 7 belong to the abandoned timeline.
  const ahead = prepared(7);
  ahead.older = [{ version: 6, params: new Float32Array(5) }];
  assert.deepEqual(
    startPrepare(ahead, { type: "trainer.prepare", term: 2, version: 5, reducers: REDUCERS }),
    {
      kind: "fetch",
      atLeast: 5,
    },
  );
  assert.deepEqual(ahead.older, [], "the abandoned versions are forgotten");
  const restored = new Float32Array([9, 9, 9, 9, 9]);
  holdVersion(ahead, 5, restored);
  assert.equal(ahead.version, 5);
  assert.equal(ahead.params, restored);
  assert.deepEqual(ahead.older, [], "no version of the abandoned timeline to roll back to");
});

test("a version completes when every reducer's slice has arrived, in any order", () => {
  const s = prepared(0);
  assert.deepEqual(addSlice(s, slice(1, 1, 9)), {});
  assert.equal(s.version, 0);
  const { completed } = addSlice(s, slice(1, 0, 8));
  assert.deepEqual(Array.from(completed!), [8, 8, 8, 9, 9]);
  assert.equal(s.version, 1);
  assert.equal(s.older[0]?.version, 0, "the version before is kept for a redo");
  // A slice of a version already held, or of an older term, is not used.
  assert.deepEqual(addSlice(s, slice(1, 0, 5)), {});
  assert.deepEqual(addSlice(prepared(0, 3), slice(1, 0, 5, 2)), { ignored: "stale-term" });
  assert.deepEqual(addSlice(initialVersions(), slice(1, 0, 5)), { ignored: "not-prepared" });
});

test("a step runs on version step-1, waits when behind, contributes nothing when ahead", () => {
  const s = prepared(0);
  assert.deepEqual(decideStep(s, step(1), COORD, 0), { kind: "run" });
  assert.deepEqual(decideStep(s, step(3), COORD, 100), { kind: "wait" });
  assert.equal(s.pendingStep?.since, 100);
  assert.equal(takeRunnable(s), undefined, "version 2 is not held yet");
  addSlice(s, slice(1, 0, 1));
  addSlice(s, slice(1, 1, 1));
  addSlice(s, slice(2, 0, 2));
  addSlice(s, slice(2, 1, 2));
  assert.equal(s.version, 2);
  assert.equal(takeRunnable(s)?.msg.step, 3);
  assert.equal(s.pendingStep, undefined);
  // Version 2 held, prev 1: step 1 needs version 0, which is gone.
  assert.deepEqual(decideStep(s, step(1), COORD, 0), { kind: "ahead" });
  assert.deepEqual(decideStep(s, step(5, 0), COORD, 0), { kind: "stale" });
});

test("a redone step rolls back to the version before and drops partial newer versions", () => {
  const s = prepared(4);
  holdVersion(s, 5, new Float32Array(5).fill(5));
  addSlice(s, slice(6, 0, 6)); // half of version 6 (from the aborted attempt)
  assert.deepEqual(decideStep(s, step(5, 1, 1), COORD, 0), { kind: "run" });
  assert.equal(s.version, 4);
  assert.deepEqual(Array.from(paramsOf(s, 4)!), [4, 4, 4, 4, 4]);
  assert.equal(paramsOf(s, 5), undefined, "the rolled-back version is gone");
  // The other half of the aborted version 6 must not complete it.
  assert.deepEqual(addSlice(s, slice(6, 1, 6)), {});
  assert.equal(s.version, 4);
});

test("a parked step fetches its version from the reducers only after its wait, and takes only that version", () => {
  const s = prepared(0);
  decideStep(s, step(3), COORD, 1_000);
  assert.equal(resumeDue(s, 1_000 + RESUME_MIN_WAIT_MS - 1), undefined);
  const pending = resumeDue(s, 1_000 + RESUME_MIN_WAIT_MS);
  assert.equal(pending?.msg.step, 3);
  assert.match(
    takeFetched(s, pending!, 4, new Float32Array(5)) ?? "",
    /reducers hold version 4, the step needs 2/,
  );
  assert.equal(s.pendingStep, undefined);
  decideStep(s, step(3), COORD, 5_000);
  const again = resumeDue(s, 5_000 + RESUME_MIN_WAIT_MS)!;
  assert.equal(takeFetched(s, again, 2, new Float32Array(5).fill(2)), undefined);
  assert.equal(s.version, 2);
  assert.equal(takeRunnable(s)?.msg.step, 3);
});

test("trainer.fetch is served from the version held or the one before, and refused otherwise", () => {
  const s = prepared(1);
  holdVersion(s, 2, Float32Array.from([1, 2, 3, 4, 5]));
  const now = serveFetch(s, { type: "trainer.fetch", version: 2, offset: 3, length: 2 });
  assert.deepEqual(now, { type: "trainer.params", version: 2, offset: 3, data: Float32Array.from([4, 5]) });
  const before = serveFetch(s, { type: "trainer.fetch", version: 1, offset: 0, length: 3 });
  assert.deepEqual(typeof before !== "string" && Array.from(before.data), [1, 1, 1]);
  assert.equal(
    serveFetch(s, { type: "trainer.fetch", version: 9, offset: 0, length: 3 }),
    "trainer holds versions 2/1, not 9",
  );
  assert.equal(
    typeof serveFetch(initialVersions(), { type: "trainer.fetch", version: 0, offset: 0, length: 1 }),
    "string",
  );
});

test("the reducers' slices are taken only when they agree on one version at least the one asked", () => {
  const copy = (version: number, r: 0 | 1, fill: number) => {
    const offset = BOUNDS[r]!;
    return {
      type: "reducer.slice" as const,
      version,
      r,
      offset,
      data: new Float32Array(BOUNDS[r + 1]! - offset).fill(fill),
    };
  };
  assert.equal(agreedVersion([copy(3, 0, 1), copy(4, 1, 2)], 3, 5), undefined);
  assert.equal(agreedVersion([copy(3, 0, 1), copy(3, 1, 2)], 4, 5), undefined);
  const got = agreedVersion([copy(4, 0, 1), copy(4, 1, 2)], 3, 5);
  assert.equal(got?.version, 4);
  assert.deepEqual(Array.from(got!.params), [1, 1, 1, 2, 2]);
});

test("one step of staleness: step s runs on version s-2 while s-1 is newest; three versions are kept", () => {
  const s = prepared(0, 1, 3);
  const full = (v: number) => {
    addSlice(s, slice(v, 0, v));
    addSlice(s, slice(v, 1, v));
  };
  assert.deepEqual(decideStep(s, step(1, 1, 0, 0), COORD, 0), { kind: "run" });
  assert.deepEqual(decideStep(s, step(2, 1, 0, 0), COORD, 0), { kind: "run" }, "step 2 on version 0 too");
  full(1);
  full(2);
  assert.deepEqual(
    s.older.map((o) => o.version),
    [1, 0],
  );
  assert.deepEqual(
    decideStep(s, step(3, 1, 0, 1), COORD, 0),
    { kind: "run" },
    "version 1 is an older one held",
  );
  assert.deepEqual(Array.from(paramsOf(s, 1)!), [1, 1, 1, 1, 1]);
  full(3);
  assert.deepEqual(
    s.older.map((o) => o.version),
    [2, 1],
    "at most three in all",
  );
  // Step 6 on version 4 waits for it.
  assert.deepEqual(decideStep(s, step(6, 1, 0, 4), COORD, 7), { kind: "wait" });
  full(4);
  assert.equal(takeRunnable(s)?.msg.step, 6);
  // Version 0 is gone: a step asked on it contributes nothing.
  assert.deepEqual(decideStep(s, step(2, 1, 1, 0), COORD, 0), { kind: "ahead" });
});

test("a step on a version it may not be computed on is refused as a misfit, holding nothing", () => {
  const s = prepared(3, 1, 2);
  assert.equal(decideStep(s, step(5, 1, 0, 3), COORD, 0).kind, "misfit", "sync keeps two: s-2 is out");
  assert.equal(decideStep(s, step(4, 1, 0, 4), COORD, 0).kind, "misfit", "on the step's own version");
  assert.equal(s.pendingStep, undefined);
  const stale = prepared(3, 1, 3);
  assert.equal(decideStep(stale, step(5, 1, 0, 3), COORD, 0).kind, "run");
  assert.equal(decideStep(stale, step(6, 1, 0, 3), COORD, 0).kind, "misfit");
});

test("a redone step under staleness rolls back every version at or past it", () => {
  const s = prepared(3, 1, 3);
  holdVersion(s, 4, new Float32Array(5).fill(4));
  holdVersion(s, 5, new Float32Array(5).fill(5));
  // Step 5 is redone (its commit was rolled back): version 5 goes; step 5 computes on version 3.
  assert.deepEqual(decideStep(s, step(5, 1, 2, 3), COORD, 0), { kind: "run" });
  assert.equal(s.version, 4);
  assert.equal(paramsOf(s, 5), undefined);
  assert.deepEqual(Array.from(paramsOf(s, 3)!), [3, 3, 3, 3, 3]);
});
