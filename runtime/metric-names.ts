/**
 * The Prometheus naming conventions flock's metrics follow, as a pure check: `_total` on counters and
 * only on counters, base units spelled out (`_seconds`, `_bytes`), snake_case. promtool's lint
 * (`promtool check metrics`) finds the same problems in a scrape; this finds them at registration.
 * @module
 */

/** Unit suffixes that are not base units, or are abbreviated (promtool: "use base unit"). */
const NON_BASE_UNITS = new Set([
  "ms",
  "us",
  "ns",
  "millis",
  "milliseconds",
  "microseconds",
  "nanoseconds",
  "sec",
  "secs",
  "minutes",
  "hours",
  "days",
  "kb",
  "mb",
  "gb",
  "kib",
  "mib",
  "gib",
  "kilobytes",
  "megabytes",
  "gigabytes",
  "bits",
  "percent",
]);

/** Why `name` breaks the conventions for a metric of type `type`, or undefined when it follows them. */
export function metricNameProblem(name: string, type: string): string | undefined {
  if (!/^[a-z_:][a-z0-9_:]*$/.test(name)) return "use snake_case: lower-case letters, digits and _";
  const parts = name.split("_");
  const total = parts.at(-1) === "total";
  if (type === "counter" && !total) return "a counter's name ends in _total";
  if (type !== "counter" && total) return `only counters end in _total (this is a ${type})`;
  const unit = parts.find((p) => NON_BASE_UNITS.has(p));
  if (unit) return `"${unit}" is no base unit: use _seconds, _bytes or a ratio`;
  if (type === "histogram" && !/_(seconds|bytes)$/.test(name)) return "a histogram's name ends in its unit";
  return undefined;
}

/** Every problem in a registry's list of metrics, as `name: problem` lines (empty when all follow the conventions). */
export function metricNameProblems(list: ReadonlyArray<{ name: string; type: string }>): string[] {
  return list.flatMap(({ name, type }) => {
    const problem = metricNameProblem(name, type);
    return problem ? [`${name}: ${problem}`] : [];
  });
}

/** The metrics a Prometheus text exposition declares, from its `# TYPE name type` lines. */
export function typesInExposition(text: string): Array<{ name: string; type: string }> {
  return [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1]!, type: m[2]! }));
}
