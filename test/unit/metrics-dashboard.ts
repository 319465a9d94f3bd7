/**
 * Reading the sample Grafana dashboard: its panels (checked with zod) and the metrics their PromQL
 * names. Shared by the unit test of the dashboard and the live daemon's scrape test.
 * @module
 */
import { z } from "zod";

/** The parts of a Grafana dashboard this project relies on. */
const Dashboard = z.object({
  title: z.string(),
  uid: z.string(),
  templating: z.object({ list: z.array(z.object({ name: z.string(), query: z.unknown() })) }),
  panels: z.array(
    z.object({
      title: z.string(),
      datasource: z.object({ type: z.literal("prometheus"), uid: z.literal("${datasource}") }),
      targets: z.array(z.object({ refId: z.string(), expr: z.string().min(1) })).min(1),
    }),
  ),
});

/** Metric names in a PromQL expression: identifiers followed by a selector or a range. */
export function metricsInExpr(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{[]/g)].map((m) => m[1]!);
}

/** The series a histogram or another metric exports under its name. */
export function exported(list: ReadonlyArray<{ name: string; type: string }>): Set<string> {
  return new Set(
    list.flatMap(({ name, type }) =>
      type === "histogram" ? [`${name}_bucket`, `${name}_count`, `${name}_sum`] : [name],
    ),
  );
}

/** Every metric the dashboard's panels and variables query. */
export function dashboardMetrics(json: string): string[] {
  const d = Dashboard.parse(JSON.parse(json));
  const fromPanels = d.panels.flatMap((p) => p.targets.flatMap((t) => metricsInExpr(t.expr)));
  const fromVariables = d.templating.list.flatMap((v) =>
    [...JSON.stringify(v.query ?? "").matchAll(/label_values\((\w+)/g)].map((m) => m[1]!),
  );
  return [...new Set([...fromPanels, ...fromVariables])];
}
