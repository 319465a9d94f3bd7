/**
 * The training report: files written, SVG well formed with its marks, and the HTML rendered by
 * headless Chromium (dumped DOM and a screenshot whose pixels show the chart colours).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { XMLValidator } from "fast-xml-parser";
import { PNG } from "pngjs";
import { writeTrainingReport, type TrainingReportInput } from "../../tools/report/report.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_TIMEOUT_MS = process.env.CI ? 120_000 : 60_000;
const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Deterministic noise in [-1, 1), so the fixture is the same on every run. */
function noise(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 31 - 1;
  };
}

/** A 3-epoch job of 360 steps: 4 joins, a death with recovery at step 140, a join at 230. */
function realisticInput(): TrainingReportInput {
  const rand = noise(7);
  const stepsPerEpoch = 120;
  const steps: TrainingReportInput["steps"] = [];
  const evals: TrainingReportInput["evals"] = [];
  let t = 0;
  for (let step = 1; step <= 3 * stepsPerEpoch; step++) {
    const members = step < 141 ? 4 : step < 231 ? 3 : 4;
    const slow = step === 140 ? 2.6 : 0;
    t += 0.09 + slow + rand() * 0.01;
    const samplesPerSec = step === 140 ? 180 : members * 850 + rand() * 120;
    const epoch = Math.ceil(step / stepsPerEpoch);
    const loss = 2.3 * Math.exp(-step / 70) + 0.18 + rand() * 0.12 * Math.exp(-step / 200);
    steps.push({ step, epoch, t, loss, members, samplesPerSec });
    if (step % 40 === 0) {
      evals.push({ step, epoch, t, loss: loss * 1.05, accuracy: 0.98 - 0.88 * Math.exp(-step / 60) });
    }
  }
  const membership: TrainingReportInput["membership"] = [
    ...["node-a", "node-b", "node-c", "node-d"].map((node) => ({
      t: 0,
      step: 0,
      kind: "join" as const,
      node,
    })),
    { t: 12.4, step: 139, kind: "suspect", node: "node-c", detail: "missed 3 heartbeats" },
    {
      t: 13.1,
      step: 140,
      kind: "death",
      node: "node-c",
      detail: "no heartbeat for 2.0 s; step 140 finished by 3 survivors",
    },
    {
      t: 15.5,
      step: 141,
      kind: "recovered",
      node: "node-c",
      detail: "shards 7–9 reassigned",
      recoverySeconds: 2.4,
    },
    { t: 23.9, step: 230, kind: "join", node: "node-e", detail: "parameters from node-a" },
    { t: 28.0, step: 280, kind: "failover", node: "coord-b", detail: "lease revision 41 → 42" },
    {
      t: 28.7,
      step: 281,
      kind: "recovered",
      node: "coord-b",
      detail: "standby coordinator took over",
      recoverySeconds: 0.7,
    },
  ];
  const last = steps[steps.length - 1];
  const lastEval = evals[evals.length - 1];
  assert.ok(last && lastEval);
  return {
    title: "mnist — job j-1a2b",
    startedAt: "2025-03-14T09:26:53.589Z",
    settings: {
      example: "mnist",
      workers: 4,
      epochs: 3,
      batch: 256,
      lr: 0.05,
      nats: "embedded",
      checkpoints: true,
    },
    backend: "tfjs-node",
    device: "cpu (16 threads)",
    result: {
      status: "completed",
      epochs: 3,
      steps: last.step,
      accuracy: lastEval.accuracy,
      loss: lastEval.loss,
      samplesPerEpoch: [60000, 60000, 60000],
      replicasConsistent: true,
      membershipChanges: membership.length,
      wallSeconds: last.t + 1.2,
    },
    steps,
    evals,
    membership,
  };
}

/** Text of every `class` attribute value that starts with `prefix`, counted. */
function countClass(markup: string, cls: string): number {
  return markup.split(`class="${cls}`).length - 1;
}

/**
 * Runs Chromium headless with `args` in its own process group, bounded by a timeout; the group
 * is killed in cleanup whatever happens.
 */
async function runChromium(t: TestContext, args: readonly string[]): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), "flock-chromium-"));
  t.after(() => rm(profile, { recursive: true, force: true }));
  const child = spawn(
    CHROMIUM,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      ...args,
    ],
    { detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  const killGroup = (): void => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  };
  t.after(killGroup);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const code = await new Promise<number | string>((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup();
      reject(new Error(`chromium ${args.join(" ")} timed out after ${CHROMIUM_TIMEOUT_MS} ms\n${stderr}`));
    }, CHROMIUM_TIMEOUT_MS);
    child.on("error", (err) => (clearTimeout(timer), reject(err)));
    child.on("close", (c, signal) => (clearTimeout(timer), resolve(c ?? signal ?? "?")));
  });
  assert.equal(code, 0, `chromium exited with ${code}:\n${stderr}`);
  return stdout;
}

/** Pixels of `png` within `tolerance` (per channel) of the `#rrggbb` colour. */
function countColor(png: PNG, hex: string, tolerance = 24): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
  let n = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    const dr = Math.abs((png.data[i] ?? 0) - r);
    const dg = Math.abs((png.data[i + 1] ?? 0) - g);
    const db = Math.abs((png.data[i + 2] ?? 0) - b);
    if (dr <= tolerance && dg <= tolerance && db <= tolerance) n++;
  }
  return n;
}

test("writes a standalone SVG with lines, points and membership markers", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "flock-report-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { htmlPath, svgPath } = await writeTrainingReport(realisticInput(), dir);
  assert.ok(existsSync(htmlPath) && existsSync(svgPath));
  const svg = await readFile(svgPath, "utf8");
  assert.equal(XMLValidator.validate(svg), true, "the SVG is well-formed XML");
  assert.match(svg, /^<\?xml[^>]*>\s*<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(countClass(svg, "mark-line") >= 3, "raw loss, smoothed loss and accuracy lines");
  assert.ok(countClass(svg, "mark-symbol") >= 1, "eval points");
  assert.ok(countClass(svg, "mark-rule") >= 1, "membership rules");
  assert.ok(countClass(svg, "mark-rect") >= 1, "recovery bands");
  assert.match(svg, /<path[^>]*d="M[\d.,-]+L/, "line paths have geometry");
  for (const label of ["death node-c", "failover coord-b", "join node-e", "join ×4", "mnist — job j-1a2b"]) {
    assert.ok(svg.includes(label), `the SVG shows "${label}"`);
  }
});

test("Chromium renders the HTML report with its charts and timeline", async (t) => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: the report test needs Chromium. Install it with: sudo apt-get install -y chromium`,
  );
  const dir = await mkdtemp(join(tmpdir(), "flock-report-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const input = realisticInput();
  const { htmlPath, svgPath } = await writeTrainingReport(input, dir);
  const url = pathToFileURL(htmlPath).href;
  const html = await readFile(htmlPath, "utf8");
  assert.doesNotMatch(html, /<(script|link|img|iframe)[^>]*\s(src|href)=/i, "the page loads nothing");

  const dom = await runChromium(t, ["--dump-dom", url]);
  const figure = /<figure class="chart" id="chart-loss-accuracy">([\s\S]*?)<\/figure>/.exec(dom)?.[1] ?? "";
  assert.match(figure, /<svg[^>]*class="marks"/, "the loss chart is an inline SVG in the rendered DOM");
  assert.ok((figure.match(/<path/g) ?? []).length >= 10, "the loss chart has path elements");
  assert.ok(
    countClass(figure, "mark-rule") >= 1 && figure.includes("death node-c"),
    "death marker on the chart",
  );
  assert.ok(
    figure.includes("failover coord-b") && figure.includes("join node-e"),
    "failover and join markers",
  );
  assert.match(dom, /<figure class="chart" id="chart-throughput"><svg/, "throughput chart rendered");
  const timeline = /<table id="membership-timeline">([\s\S]*?)<\/table>/.exec(dom)?.[1] ?? "";
  assert.equal((timeline.match(/<tr class="event-/g) ?? []).length, input.membership.length);
  assert.match(timeline, /event-death[\s\S]*node-c/);
  assert.match(timeline, /event-recovered[\s\S]*2\.40 s/, "recovery seconds in the table");
  assert.match(dom, /<span class="pill ok" id="status">completed<\/span>/);

  const shot = join(dir, "screenshot.png");
  await runChromium(t, [`--screenshot=${shot}`, "--window-size=1280,2000", "--hide-scrollbars", url]);
  const bytes = await readFile(shot);
  const kept = join(REPO_ROOT, "reports");
  await mkdir(kept, { recursive: true });
  await copyFile(shot, join(kept, "test-screenshot.png"));
  await copyFile(htmlPath, join(kept, "test-report.html"));
  await copyFile(svgPath, join(kept, "test-loss-accuracy.svg"));
  assert.ok(bytes.length > 50_000, `screenshot is ${bytes.length} bytes`);
  const png = PNG.sync.read(bytes);
  assert.deepEqual([png.width, png.height], [1280, 2000]);
  assert.ok(countColor(png, "#1565c0") > 500, "loss line painted (blue)");
  assert.ok(countColor(png, "#ef6c00") > 500, "accuracy line painted (orange)");
  assert.ok(countColor(png, "#c62828", 16) > 50, "death marker painted (red)");
});
