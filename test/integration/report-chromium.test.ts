/**
 * The training report's HTML rendered by headless Chromium: the dumped DOM, and a screenshot whose
 * pixels show the chart colours.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PNG } from "pngjs";
import { writeTrainingReport } from "../../tools/report/report.js";
import { countClass, realisticInput } from "../fixtures/report-input.js";
import { registerCleanup, scaleTimeout, spawnChild } from "../helpers/index.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_TIMEOUT_MS = 60_000;
const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * Runs Chromium headless with `args` in its own process group, bounded by a timeout (×3 under CI);
 * the group is killed in cleanup whatever happens. Resolves with its stdout.
 */
async function runChromium(t: TestContext, args: readonly string[]): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), "flock-chromium-"));
  t.after(() => rm(profile, { recursive: true, force: true }));
  const flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"];
  const quiet = ["--disable-background-networking", "--disable-component-update", "--disable-sync"];
  const child = registerCleanup(
    t,
    spawnChild(CHROMIUM, [...flags, ...quiet, `--user-data-dir=${profile}`, ...args], {
      name: "chromium",
      processGroup: true,
      stopGraceMs: 0,
    }),
  );
  const limit = scaleTimeout(CHROMIUM_TIMEOUT_MS);
  const exit = await Promise.race([child.exited, sleep(limit, "timeout" as const, { ref: false })]);
  if (exit === "timeout") {
    child.kill("SIGKILL");
    throw new Error(`chromium ${args.join(" ")} timed out after ${limit} ms\n${child.output().slice(-6000)}`);
  }
  assert.equal(
    exit.code,
    0,
    `chromium exited with ${exit.code ?? exit.signal}:\n${child.output().slice(-6000)}`,
  );
  return child.stdout();
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
