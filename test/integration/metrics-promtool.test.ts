/**
 * A live daemon's `/metrics` passes `promtool check metrics` (Debian's `prometheus` package): a real
 * `flock daemon` on a real nats-server, scraped once it has trained a few steps of a job, so the
 * training series (step and commit histograms, samples, gradient bytes) are in the scrape. Its
 * series follow the naming conventions, and every metric the sample Grafana dashboard queries is in it.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { freePort } from "../../tools/natsd/index.js";
import { metricNameProblems, typesInExposition } from "../../runtime/metrics.js";
import { STEP_SECONDS_METRIC, COMMIT_SECONDS_METRIC, SAMPLES_METRIC } from "../../actors/timings.js";
import { GRAD_BYTES_METRIC } from "../../actors/trainer/grad-codec.js";
import { registerCleanup, scaleTimeout, spawnChild, useNatsServer, waitFor } from "../helpers/index.js";
import { dashboardMetrics, exported } from "../unit/metrics-dashboard.js";
import { FLOCK, startDaemon } from "./cluster-kit.js";

const PROMTOOL = "/usr/bin/promtool";
const CLUSTER = "prom";
const DASHBOARD = fileURLToPath(new URL("../../../examples/grafana-flock.json", import.meta.url));

/** A sample line's value, summed over its label sets (0 when absent). */
function sampleSum(text: string, series: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${series}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) sum += Number(m[1]);
  return sum;
}

test(
  "promtool check metrics: a training daemon's /metrics has no problems",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    assert.ok(
      existsSync(PROMTOOL),
      `${PROMTOOL} is missing: apt-get install -y prometheus (or run scripts/test-deps.sh)`,
    );
    const server = await useNatsServer(t, { jetstream: true });
    const port = await freePort();
    await startDaemon(t, [server.url], CLUSTER, "m1", [
      "--metrics-port",
      String(port),
      "--log-level",
      "warn",
    ]);
    const train = registerCleanup(
      t,
      spawnChild(
        process.execPath,
        [
          FLOCK,
          "train",
          "mnist",
          "--nats",
          server.url,
          "--cluster",
          CLUSTER,
          "--workers",
          "1",
          "--epochs",
          "1",
          "--no-report",
        ],
        { name: "flock train" },
      ),
    );
    await train.waitForLine(/\(job (\S+)\)/, scaleTimeout(30_000));
    const scrape = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
      return res.text();
    };
    // A few committed steps: the histograms have observations.
    const text = await waitFor(
      "five trainer steps and reducer commits in the scrape",
      async () => {
        const s = await scrape();
        return sampleSum(s, `${STEP_SECONDS_METRIC}_count`) >= 5 &&
          sampleSum(s, `${COMMIT_SECONDS_METRIC}_count`) >= 5
          ? s
          : undefined;
      },
      { timeoutMs: 90_000 },
    );

    const check = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
    assert.equal(check.error, undefined);
    assert.equal(`${check.stdout}${check.stderr}`, "", "promtool reports nothing");
    assert.equal(check.status, 0);

    const declared = typesInExposition(text);
    assert.deepEqual(metricNameProblems(declared), []);
    assert.ok(sampleSum(text, SAMPLES_METRIC) > 0, SAMPLES_METRIC);
    assert.ok(sampleSum(text, GRAD_BYTES_METRIC) > 0, GRAD_BYTES_METRIC);
    assert.match(text, /^flock_slots\{node="m1"\} 1$/m);
    assert.match(text, /^flock_event_loop_lag_seconds\{stat="p99",node="m1"\} /m);
    const have = exported(declared);
    assert.deepEqual(
      dashboardMetrics(readFileSync(DASHBOARD, "utf8")).filter((n) => !have.has(n)),
      [],
      "every metric the Grafana dashboard queries is in the scrape",
    );
  },
);
