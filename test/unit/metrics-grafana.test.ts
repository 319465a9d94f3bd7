/**
 * The sample Grafana dashboard (examples/grafana-flock.json): valid JSON, every panel a query on the
 * Prometheus data source, and every metric its queries name one that flock really exports (a
 * histogram through its _bucket, _count or _sum series). The live daemon's scrape is checked against
 * the same dashboard in test/integration/metrics-promtool.test.ts.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { typesInExposition } from "../../runtime/metrics.js";
import { exercisedMetrics } from "./metrics-exercise.js";
import { dashboardMetrics, exported, metricsInExpr } from "./metrics-dashboard.js";

const DASHBOARD = fileURLToPath(new URL("../../../examples/grafana-flock.json", import.meta.url));

test("examples/grafana-flock.json queries only metrics flock exports", async () => {
  const names = dashboardMetrics(readFileSync(DASHBOARD, "utf8"));
  assert.ok(names.length >= 10, names.join(" "));
  const have = exported([
    ...typesInExposition(await exercisedMetrics().render()),
    // Set by the membership view on its changes (runtime/cluster/membership.ts), not exercised here.
    { name: "flock_members", type: "gauge" },
    { name: "flock_heartbeat_lag_seconds", type: "gauge" },
    { name: "flock_membership_bad_frames_total", type: "counter" },
  ]);
  assert.deepEqual(
    names.filter((n) => !have.has(n)),
    [],
  );
});

test("the metric-name extraction reads selectors and ranges, not functions or labels", () => {
  assert.deepEqual(
    metricsInExpr(
      'histogram_quantile(0.95, sum by (le, node) (rate(flock_a_seconds_bucket{node=~"$node"}[5m])))',
    ),
    ["flock_a_seconds_bucket"],
  );
  assert.deepEqual(metricsInExpr("rate(flock_b_total[1m]) / flock_c{x='y'}"), ["flock_b_total", "flock_c"]);
});
