/** Layout of membership markers and the report's formatting helpers, without rendering. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  escapeHtml,
  formatDuration,
  formatOffset,
  jsonForScript,
  statusTone,
} from "../../tools/report/format.js";
import { labelText, layoutMarkerLabels, recoveryBands } from "../../tools/report/markers.js";
import type { MembershipEvent, StepSample } from "../../tools/report/types.js";

const px = (step: number): number => step * 2;

test("marker labels merge one kind at one step and stack when they would overlap", () => {
  const events: MembershipEvent[] = [
    { t: 0, step: 0, kind: "join", node: "a" },
    { t: 0, step: 0, kind: "join", node: "b" },
    { t: 9, step: 100, kind: "death", node: "c" },
    { t: 9, step: 101, kind: "recovered", node: "c", recoverySeconds: 1 },
    { t: 20, step: 400, kind: "join", node: "d" },
  ];
  const labels = layoutMarkerLabels(events, px, 2000, 4);
  assert.deepEqual(
    labels.map((l) => [l.step, l.text, l.lane]),
    [
      [0, "join ×2: a, b", 0],
      [100, "death c", 0],
      [101, "recovered c", 1],
      [400, "join d", 0],
    ],
  );
});

test("a label that would overflow the plot ends at its rule instead", () => {
  const events: MembershipEvent[] = [
    { t: 0, step: 960, kind: "death", node: "a" },
    { t: 1, step: 990, kind: "recovered", node: "a", recoverySeconds: 1 },
  ];
  const labels = layoutMarkerLabels(events, px, 2000, 4);
  assert.deepEqual(
    labels.map((l) => [l.step, l.align, l.lane]),
    [
      [960, "left", 0],
      [990, "right", 1],
    ],
  );
});

test("labels that find no free lane are left out", () => {
  const events: MembershipEvent[] = ["a", "b", "c"].map((node, i) => ({
    t: i,
    step: i,
    kind: i === 0 ? "death" : i === 1 ? "join" : "leave",
    node,
  }));
  assert.equal(layoutMarkerLabels(events, px, 2000, 2).length, 2);
});

test("long labels are cut with an ellipsis", () => {
  const text = labelText(
    "join",
    Array.from({ length: 12 }, (_, i) => `node-${i}`),
  );
  assert.ok(text.startsWith("join ×12: node-0, node-1"));
  assert.ok(text.endsWith("…") && text.length === 36);
});

test("recovery bands run from the step at the failure time to the recovery step", () => {
  const steps: StepSample[] = Array.from({ length: 50 }, (_, i) => ({
    step: i + 1,
    epoch: 1,
    t: (i + 1) * 0.5,
    loss: 1,
    members: 3,
    samplesPerSec: 1,
  }));
  const bands = recoveryBands(
    [
      { t: 20, step: 40, kind: "recovered", node: "n", recoverySeconds: 2.5 },
      { t: 21, step: 41, kind: "death", node: "m", recoverySeconds: 9 },
      { t: 1, step: 2, kind: "recovered", node: "k", recoverySeconds: 5 },
      { t: 22, step: 44, kind: "recovered", node: "z", recoverySeconds: Number.NaN },
    ],
    steps,
  );
  assert.deepEqual(bands, [
    { fromStep: 35, toStep: 40, seconds: 2.5 },
    { fromStep: 1, toStep: 2, seconds: 5 },
  ]);
});

test("escaping and formatting helpers", () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  assert.equal(jsonForScript({ s: "</script>\u2028" }), '{"s":"\\u003c/script>\\u2028"}');
  assert.equal(formatDuration(3.456), "3.46 s");
  assert.equal(formatDuration(75), "1 m 15 s");
  assert.equal(formatDuration(3725), "1 h 02 m");
  assert.equal(formatOffset(72.25), "+1:12.3");
  assert.equal(statusTone("completed"), "ok");
  assert.equal(statusTone("Failed: reducer lost"), "failed");
  assert.equal(statusTone("cancelled"), "other");
});
