import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";

type Labels = Record<string, string>;

interface Series {
  help: string;
  kind: "counter" | "gauge";
  values: Map<string, { labels: Labels; value: number }>;
}

/**
 * Counters and gauges with labels, exposed as Prometheus text. Small on purpose: the runtime needs
 * a handful of series, read both by the metrics endpoint and by `flock status`.
 */
export class Metrics {
  private readonly series = new Map<string, Series>();

  /** Adds to a counter. */
  inc(name: string, labels: Labels = {}, by = 1, help = name): void {
    const entry = this.entry(name, "counter", labels, help);
    entry.value += by;
  }

  /** Sets a gauge. */
  set(name: string, value: number, labels: Labels = {}, help = name): void {
    this.entry(name, "gauge", labels, help).value = value;
  }

  /** A series' value for the given labels (0 when absent). */
  get(name: string, labels: Labels = {}): number {
    return this.series.get(name)?.values.get(labelKey(labels))?.value ?? 0;
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

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const lines: string[] = [];
    for (const [name, s] of [...this.series].sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(`# HELP ${name} ${s.help}`, `# TYPE ${name} ${s.kind}`);
      for (const { labels, value } of s.values.values()) {
        const l = Object.entries(labels)
          .map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`)
          .join(",");
        lines.push(`${name}${l ? `{${l}}` : ""} ${value}`);
      }
    }
    return lines.join("\n") + "\n";
  }

  private entry(
    name: string,
    kind: Series["kind"],
    labels: Labels,
    help: string,
  ): { labels: Labels; value: number } {
    let s = this.series.get(name);
    if (!s) {
      s = { help, kind, values: new Map() };
      this.series.set(name, s);
    }
    const key = labelKey(labels);
    let v = s.values.get(key);
    if (!v) {
      v = { labels, value: 0 };
      s.values.set(key, v);
    }
    return v;
  }
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
