/**
 * The report on awkward input: a job that failed before its first step, hostile text, a long
 * run that must be downsampled, and non-finite losses.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { XMLValidator } from "fast-xml-parser";
import { writeTrainingReport, type TrainingReportInput } from "../../tools/report/report.js";

function failedAtStepZero(): TrainingReportInput {
  return {
    title: "spam — job j-dead",
    startedAt: "not a date",
    settings: { example: "spam", workers: 2 },
    backend: "cpu",
    result: {
      status: "failed",
      epochs: 0,
      steps: 0,
      accuracy: Number.NaN,
      loss: Number.NaN,
      samplesPerEpoch: [],
      replicasConsistent: false,
      membershipChanges: 0,
      wallSeconds: 0.4,
    },
    steps: [],
    evals: [],
    membership: [],
  };
}

async function render(t: import("node:test").TestContext, input: TrainingReportInput) {
  const dir = await mkdtemp(join(tmpdir(), "flock-report-edge-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const files = await writeTrainingReport(input, join(dir, "nested", "out"));
  return { html: await readFile(files.htmlPath, "utf8"), svg: await readFile(files.svgPath, "utf8") };
}

test("a job that failed at step 0 gives a report with empty, labelled charts", async (t) => {
  const { html, svg } = await render(t, failedAtStepZero());
  assert.equal(XMLValidator.validate(svg), true);
  assert.ok(svg.includes("No training steps were committed"));
  assert.ok(html.includes("No throughput recorded"));
  assert.ok(html.includes("No membership changes during this job."));
  assert.match(html, /<span class="pill failed" id="status">failed<\/span>/);
  assert.match(html, /replicas consistent<\/div><div class="value">NO</);
  assert.ok(html.includes("not a date"), "an unparsable start time is shown as given");
});

test("text from the input is escaped in the HTML and the SVG", async (t) => {
  const input = failedAtStepZero();
  input.title = `</title><script>alert("t")</script>`;
  input.settings = { "<b>key</b>": `"quoted" & <i>v</i>`, "</script>": "x" };
  input.steps = [{ step: 1, epoch: 1, t: 0.1, loss: 1, members: 1, samplesPerSec: 10 }];
  input.membership = [
    { t: 0, step: 1, kind: "death", node: `<img src=x onerror=alert(1)>`, detail: "a & b" },
  ];
  const { html, svg } = await render(t, input);
  assert.equal(XMLValidator.validate(svg), true, "hostile labels keep the SVG well formed");
  assert.ok(!html.includes("<script>alert"), "no injected script element");
  assert.ok(!html.includes("<img"), "no injected img element");
  assert.ok(!html.includes("<b>key</b>") && !html.includes("<i>v</i>"));
  assert.ok(html.includes("&lt;/title&gt;&lt;script&gt;alert(&quot;t&quot;)"));
  assert.ok(html.includes("&quot;quoted&quot; &amp; &lt;i&gt;v&lt;/i&gt;"));
  const data = /<script type="application\/json" id="flock-report-data">([\s\S]*?)<\/script>/.exec(html)?.[1];
  assert.ok(data !== undefined && !data.includes("<"), "embedded JSON cannot close its script element");
  assert.equal((JSON.parse(data) as TrainingReportInput).title, input.title);
  // Exactly one script element, the inert JSON block.
  assert.equal(html.match(/<script/g)?.length, 1);
});

test("a long run is downsampled and non-finite losses are left out of the lines", async (t) => {
  const input = failedAtStepZero();
  input.result.status = "diverged";
  input.steps = Array.from({ length: 20_000 }, (_, i) => ({
    step: i + 1,
    epoch: 1 + Math.floor(i / 5000),
    t: i * 0.01,
    loss: i > 19_990 ? Number.NaN : 1 / (1 + i / 1000),
    members: i % 997 === 0 ? 3 : 4,
    samplesPerSec: 4000,
  }));
  input.evals = [{ step: 19_000, epoch: 4, t: 190, loss: Number.POSITIVE_INFINITY, accuracy: 0.5 }];
  const { html, svg } = await render(t, input);
  assert.equal(XMLValidator.validate(svg), true);
  assert.ok(!svg.includes("NaN"), "no NaN coordinates in the SVG");
  assert.ok(svg.length < 400_000, `SVG stays small: ${svg.length} chars`);
  assert.ok(html.includes("epoch 4"), "epoch boundaries drawn");
  assert.match(html, /<span class="pill failed" id="status">diverged<\/span>/);
});
