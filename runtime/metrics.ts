import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { metricNameProblem } from "./metric-names.js";

export { metricNameProblem, metricNameProblems, typesInExposition } from "./metric-names.js";

type Labels = Record<string, string>;
type Kind = "counter" | "gauge" | "histogram";

/** Buckets of the duration histograms (seconds): a 2 ms step to a 30 s recovery. */
export const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface Series {
  kind: Kind;
  labelNames: readonly string[];
  metric: Counter | Gauge | Histogram;
  /** Current values (a histogram's: its sum), for the synchronous reads of `flock status` and tests. */
  values: Map<string, { labels: Labels; value: number; count: number }>;
}

/** Options of one node's {@link Metrics}. */
export interface MetricsOptions {
  /** Node id, added to every flock series as the `node` label (several nodes may share a process). */
  node?: string;
}

/**
 * One node's counters, gauges and histograms in a prom-client registry of its own (never the global
 * default registry: an embedded cluster or a test runs several nodes in one process). Series are
 * created on first use, with the label names of that use; names are checked against the Prometheus
 * conventions then (see {@link metricNameProblem}), so a misnamed metric fails the first test that
 * touches it. Values are mirrored for synchronous reads (`get`, `total`, `byLabel`), since
 * prom-client's own reads are asynchronous.
 */
export class Metrics {
  /** This node's registry; {@link Metrics.render} adds the process-wide default metrics to it. */
  readonly registry = new Registry();
  private readonly series = new Map<string, Series>();
  private readonly node: string | undefined;

  constructor(opts: MetricsOptions = {}) {
    this.node = opts.node;
    if (opts.node !== undefined) this.registry.setDefaultLabels({ node: opts.node });
  }

  /** Adds to a counter. */
  inc(name: string, labels: Labels = {}, by = 1, help = name): void {
    const s = this.entry(name, "counter", labels, help);
    (s.metric as Counter).inc(labels, by);
    this.mirror(s, labels).value += by;
  }

  /** Sets a gauge. */
  set(name: string, value: number, labels: Labels = {}, help = name): void {
    const s = this.entry(name, "gauge", labels, help);
    (s.metric as Gauge).set(labels, value);
    this.mirror(s, labels).value = value;
  }

  /** Records one observation in a histogram (durations in seconds, sizes in bytes). */
  observe(name: string, value: number, labels: Labels = {}, help = name, buckets = SECONDS_BUCKETS): void {
    const s = this.entry(name, "histogram", labels, help, buckets);
    (s.metric as Histogram).observe(labels, value);
    const v = this.mirror(s, labels);
    v.value += value;
    v.count++;
  }

  /**
   * Creates a series before its first value, so that it is exported from the start (a counter
   * label-less at 0; a labelled one with its HELP and TYPE): Prometheus' `rate()` and a dashboard
   * then see it before the first event. A no-op for a series that exists.
   */
  declare(name: string, kind: Kind, help: string, labelNames: readonly string[] = []): void {
    this.entry(name, kind, Object.fromEntries(labelNames.map((l) => [l, ""])), help);
  }

  /** Drops one labelled series (a peer that died), so it stops being exported at its last value. */
  remove(name: string, labels: Labels): void {
    const s = this.series.get(name);
    const key = labelKey(labels);
    if (!s?.values.has(key)) return;
    s.metric.remove(labels);
    s.values.delete(key);
  }

  /** A series' value for the given labels (0 when absent; a histogram's sum of observations). */
  get(name: string, labels: Labels = {}): number {
    return this.series.get(name)?.values.get(labelKey(labels))?.value ?? 0;
  }

  /** Observations a histogram recorded for the given labels. */
  count(name: string, labels: Labels = {}): number {
    return this.series.get(name)?.values.get(labelKey(labels))?.count ?? 0;
  }

  /** Sum of a series over all label sets. */
  total(name: string): number {
    let sum = 0;
    for (const v of this.series.get(name)?.values.values() ?? []) sum += v.value;
    return sum;
  }

  /** Values of a series keyed by one label. */
  byLabel(name: string, label: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const v of this.series.get(name)?.values.values() ?? []) {
      const key = v.labels[label] ?? "";
      out[key] = (out[key] ?? 0) + v.value;
    }
    return out;
  }

  /** Names and types of this node's series (the process-wide defaults not included). */
  list(): Array<{ name: string; type: Kind }> {
    return [...this.series].map(([name, s]) => ({ name, type: s.kind }));
  }

  /** Content type of {@link Metrics.render}'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The process's default metrics, then this node's series, in Prometheus text format. */
  async render(): Promise<string> {
    return (await processRegistry().metrics()) + (await this.registry.metrics());
  }

  private entry(name: string, kind: Kind, labels: Labels, help: string, buckets?: number[]): Series {
    const s = this.series.get(name);
    if (s) {
      if (s.kind !== kind) throw new Error(`metric ${name} is a ${s.kind}, not a ${kind}`);
      return s;
    }
    const problem = metricNameProblem(name, kind);
    if (problem) throw new Error(`metric ${name}: ${problem}`);
    const labelNames = Object.keys(labels).sort();
    // The registry adds `node` to every series: a label of that name would collide with it.
    if (this.node !== undefined && labelNames.includes("node"))
      throw new Error(`metric ${name}: the label "node" is this node's id; name a peer "peer"`);
    const config = { name, help, labelNames, registers: [this.registry] };
    const metric =
      kind === "counter"
        ? new Counter(config)
        : kind === "gauge"
          ? new Gauge(config)
          : new Histogram({ ...config, buckets: buckets ?? SECONDS_BUCKETS });
    const created: Series = { kind, labelNames, metric, values: new Map() };
    this.series.set(name, created);
    return created;
  }

  private mirror(s: Series, labels: Labels): { labels: Labels; value: number; count: number } {
    const key = labelKey(labels);
    let v = s.values.get(key);
    if (!v) {
      v = { labels, value: 0, count: 0 };
      s.values.set(key, v);
    }
    return v;
  }
}

/**
 * prom-client's default gauges that end in `_total` (counts of handles, requests and resources now):
 * promtool flags a `_total` gauge, and each has a by-type sibling without the suffix that sums to it.
 */
const DEFAULT_TOTAL_GAUGES = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

let processMetrics: Registry | undefined;

/** The process and Node.js default metrics, registered once per process (they describe the process, not a node). */
export function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics });
    for (const name of DEFAULT_TOTAL_GAUGES) processMetrics.removeSingleMetric(name);
  }
  return processMetrics;
}

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  return keys
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}

/** Event-loop delay as a histogram: the figure that shows whether compute stalls message handling. */
export class EventLoopLag {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  constructor() {
    this.h.enable();
  }
  /** Max and p99 delay in ms since the last reset. */
  read(): { maxMs: number; p99Ms: number; meanMs: number } {
    return { maxMs: this.h.max / 1e6, p99Ms: this.h.percentile(99) / 1e6, meanMs: this.h.mean / 1e6 };
  }
  reset(): void {
    this.h.reset();
  }
  stop(): void {
    this.h.disable();
  }
}
