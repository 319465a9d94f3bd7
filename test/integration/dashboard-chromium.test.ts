/**
 * `flock dashboard` against a real cluster, read in headless Chromium: a nats-server with the
 * config of `flock auth init`, two daemons with their node credentials, a job submitted with the
 * submitter's, and the dashboard with the observer's only. From the rendered DOM: both nodes and the
 * running job appear; the job's step and its loss curve (the chart's `data-points`) advance between
 * two reads; killing the daemon that does not hold the job's coordinator shows it dead and puts a
 * membership mark on the job's chart within seconds. The page fits a phone's width. A screenshot
 * is kept (its path is printed).
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { connect } from "nats";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { z } from "zod";
import { coordinatorNode } from "../../actors/follow.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import { natsConnectionOptions } from "../../runtime/transport/index.js";
import { writeAuthFiles } from "../../tools/auth/command.js";
import { startNatsServer } from "../../tools/natsd/index.js";
import { KIND_COLORS } from "../../tools/report/markers.js";
import { registerCleanup, scaleTimeout, spawnChild, waitFor } from "../helpers/index.js";
import { FLOCK, startDaemon } from "./cluster-kit.js";

const CLUSTER = "dash";
const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const ARTIFACTS = join(REPO_ROOT, "reports", "dashboard-test");

/** Chromium through puppeteer-core; closed (and killed if it lingers) after the test whatever happens. */
async function launchBrowser(t: TestContext): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), "flock-dash-chromium-"));
  t.after(() => rm(profile, { recursive: true, force: true }));
  const browser = await puppeteer.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", `--user-data-dir=${profile}`],
    timeout: scaleTimeout(30_000),
  });
  t.after(async () => {
    await Promise.race([browser.close().catch(() => undefined), sleep(5000)]);
    browser.process()?.kill("SIGKILL");
  });
  return browser;
}

/** What the test reads of the page: node states by id, and the job's card. */
const Seen = z.object({
  nodes: z.record(z.string(), z.string()),
  job: z
    .object({
      step: z.number(),
      points: z.number(),
      marks: z.number(),
      markKinds: z.array(z.string()),
      /** Rules drawn in the chart's SVG in the colour of a death. */
      deathRules: z.number(),
      members: z.string(),
      recovery: z.string(),
    })
    .optional(),
});
type Seen = z.infer<typeof Seen>;

/** Runs in the page (this project compiles without DOM types, hence a string): reads the DOM into {@link Seen}. */
const READ_DOM = (job: string): string => `(() => {
  const nodes = {};
  for (const row of document.querySelectorAll("#nodes tr[data-node]")) nodes[row.dataset.node] = row.dataset.state;
  const card = document.querySelector('#jobs [data-job="' + ${JSON.stringify(job)} + '"]');
  const chart = card && card.querySelector(".chart");
  if (!card || !chart) return JSON.stringify({ nodes });
  return JSON.stringify({ nodes, job: {
    step: Number(card.querySelector('[data-field="step"]').textContent),
    points: Number(chart.dataset.points),
    marks: Number(chart.dataset.marks),
    markKinds: [...card.querySelectorAll('[data-field="marks"] li')].map((li) => li.dataset.kind),
    deathRules: chart.querySelectorAll('.mark-rule.role-mark [stroke="${KIND_COLORS.death}"]').length,
    members: card.querySelector('[data-field="members"]').textContent,
    recovery: card.querySelector('[data-field="recovery"]').textContent,
  } });
})()`;

async function read(page: Page, job: string): Promise<Seen> {
  const text = await page.evaluate(READ_DOM(job));
  return Seen.parse(JSON.parse(String(text)));
}

test(
  "the dashboard shows two daemons and a running job live, its curve advancing, and a killed daemon dead with a mark",
  { timeout: scaleTimeout(300_000) },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "flock-dash-auth-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const creds = (who: string): string => join(dir, `${who}.creds`);
    writeAuthFiles({ cluster: CLUSTER, nodes: ["a", "b"], out: dir });
    // The launcher writes its config in a fresh directory under the temp dir; includes resolve from there.
    const include = relative(join(tmpdir(), "launcher-dir"), join(dir, "auth.conf"));
    const server = registerCleanup(
      t,
      await startNatsServer({ jetstream: true, extraConfig: `include ${JSON.stringify(include)}` }),
    );
    const daemons = new Map(
      await Promise.all(
        ["a", "b"].map(
          async (id) =>
            [
              id,
              await startDaemon(t, [server.url], CLUSTER, id, ["--creds", creds(id), "--log-level", "warn"]),
            ] as const,
        ),
      ),
    );

    const dashboard = registerCleanup(
      t,
      spawnChild(
        process.execPath,
        [
          FLOCK,
          "dashboard",
          "--nats",
          server.url,
          "--cluster",
          CLUSTER,
          "--port",
          "0",
          "--creds",
          creds("observer"),
        ],
        { name: "flock dashboard" },
      ),
    );
    const [, url] = await dashboard.waitForLine(/^flock dashboard: (http:\/\/\S+) /, scaleTimeout(20_000));

    const train = registerCleanup(
      t,
      spawnChild(
        process.execPath,
        [FLOCK, "train", "mnist", "--nats", server.url, "--cluster", CLUSTER, "--min-workers", "1"].concat([
          "--max-workers",
          "2",
          "--epochs",
          "3",
          "--json",
          "--no-report",
        ]),
        { name: "flock train", env: { NATS_CREDS: creds("submitter") } },
      ),
    );
    const [, job] = await train.waitForLine(/\(job (\S+)\)/, scaleTimeout(30_000));

    const browser = await launchBrowser(t);
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    await page.setViewport({ width: 1200, height: 900 });
    await page.goto(url!, { waitUntil: "load", timeout: scaleTimeout(20_000) });

    const first = await waitFor(
      "both nodes alive and the job with two members on the page",
      async () => {
        const s = await read(page, job!);
        return s.nodes.a === "alive" &&
          s.nodes.b === "alive" &&
          s.job &&
          s.job.points > 0 &&
          /a.*b/.test(s.job.members)
          ? s
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    const second = await waitFor(
      "the job's step and loss curve to advance",
      async () => {
        const s = await read(page, job!);
        return s.job && s.job.step > first.job!.step && s.job.points > first.job!.points ? s : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    assert.ok(second.job!.step > first.job!.step, JSON.stringify({ first, second }));

    // Kill the member that does not run the coordinator, so the job goes on without a failover.
    const nc = await connect(natsConnectionOptions({ servers: server.url, credsFile: creds("submitter") }));
    t.after(() => nc.close());
    const holder = await coordinatorNode(new JetStreamStores(nc, { cluster: CLUSTER }), job!);
    assert.ok(holder === "a" || holder === "b", `the job's coordinator lease is held by a daemon: ${holder}`);
    const victim = holder === "a" ? "b" : "a";
    daemons.get(victim)!.proc.kill("SIGKILL");
    const killedAt = Date.now();
    const after = await waitFor(
      `${victim} dead and a membership mark on the job's chart`,
      async () => {
        const s = await read(page, job!);
        return s.nodes[victim] === "dead" &&
          s.job &&
          s.job.marks > 0 &&
          s.job.markKinds.includes("death") &&
          s.job.deathRules > 0
          ? s
          : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    const seconds = (Date.now() - killedAt) / 1000;
    process.stdout.write(`# ${victim} shown dead with a mark ${seconds.toFixed(1)} s after the kill\n`);
    assert.equal(after.nodes[holder], "alive");

    // The coordinator's own account of the death follows, with the time the job took to recover.
    await waitFor(
      "the job's recovery time on the page",
      async () => {
        const s = await read(page, job!);
        return s.job && /\d\.\d+ s/.test(s.job.recovery) ? s : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );

    await mkdir(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`# screenshot: ${shot}\n`);
    // A phone's width: nothing wider than the screen (tables scroll inside their panels).
    await page.setViewport({ width: 390, height: 844, isMobile: true });
    await sleep(500);
    const overflow = Number(await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"));
    assert.ok(overflow <= 1, `the page is ${overflow} px wider than a phone's screen`);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-phone.png"), fullPage: true });
    assert.deepEqual(pageErrors, [], "no script errors on the page");
  },
);
