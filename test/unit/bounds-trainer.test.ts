import { test } from "node:test";
import assert from "node:assert/strict";
import type { ParamsSlice } from "../../messages/index.js";
import { ParamAssembler, VERSIONS_AHEAD } from "../../actors/trainer/params.js";
import { addSlice, holdVersion, initialVersions, startPrepare } from "../../actors/trainer/versions.js";

const BOUNDS = [0, 3, 5];

function slice(version: number, r: number, fill = version): ParamsSlice {
  const offset = BOUNDS[r] ?? 0;
  const length = Math.max(1, (BOUNDS[r + 1] ?? 0) - offset);
  return {
    type: "params.slice",
    job: "j",
    term: 1,
    version,
    attempt: 0,
    r,
    offset,
    data: new Float32Array(length).fill(fill),
  };
}

test("the assembler holds partial versions only for current + 1 and current + 2", () => {
  const a = new ParamAssembler(BOUNDS);
  assert.equal(VERSIONS_AHEAD, 2);
  assert.deepEqual(a.add(slice(11, 0), 10), {});
  assert.deepEqual(a.add(slice(12, 0), 10), {});
  for (const v of [13, 100, 2 ** 31]) assert.deepEqual(a.add(slice(v, 0), 10), { refused: "future-version" });
  assert.deepEqual(a.add(slice(10, 0), 10), {}, "a version already held is not refused, just unused");
  assert.deepEqual(a.versions, [11, 12]);
  // A flood of versions never grows it past two.
  for (let v = 0; v < 10_000; v++) a.add(slice(v, v % 2), 10);
  assert.ok(a.versions.length <= VERSIONS_AHEAD);
});

test("slices that do not fit the reducer layout are refused", () => {
  const a = new ParamAssembler(BOUNDS);
  assert.deepEqual(a.add(slice(1, 2), 0), { refused: "bad-slice" });
  assert.deepEqual(a.add(slice(1, -1), 0), { refused: "bad-slice" });
  assert.deepEqual(a.add({ ...slice(1, 0), offset: 1 }, 0), { refused: "bad-slice" });
  assert.deepEqual(a.add({ ...slice(1, 0), data: new Float32Array(7) }, 0), { refused: "bad-slice" });
  assert.deepEqual(a.versions, []);
});

test("a trainer names the refusal, which its shell counts as an ignored params.slice", () => {
  const s = initialVersions();
  startPrepare(s, {
    type: "trainer.prepare",
    term: 1,
    version: 0,
    reducers: { addresses: ["a", "b"], bounds: BOUNDS },
  });
  holdVersion(s, 0, new Float32Array(5));
  s.term = 1;
  assert.deepEqual(addSlice(s, slice(3, 0)), { ignored: "future-version" });
  assert.deepEqual(addSlice(s, slice(1, 5)), { ignored: "bad-slice" });
  assert.deepEqual(addSlice(s, slice(2, 0)), {});
  const { completed } = addSlice(s, slice(2, 1));
  assert.deepEqual(Array.from(completed ?? []), [2, 2, 2, 2, 2], "version 2 completes before 1: held");
  assert.equal(s.version, 2);
});
