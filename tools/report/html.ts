/**
 * The report page: one self-contained HTML file with inline CSS and the charts inlined as SVG.
 * It loads nothing and runs no script; every piece of input text goes through `escapeHtml`.
 */
import type { RenderedCharts } from "./charts.js";
import {
  escapeHtml as esc,
  formatDuration,
  formatInt,
  formatLoss,
  formatOffset,
  formatPercent,
  formatTime,
  jsonForScript,
  statusTone,
} from "./format.js";
import { KIND_COLORS } from "./markers.js";
import type { MembershipEvent, TrainingReportInput } from "./types.js";

const CSS = `
:root { color-scheme: light; --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #f6f8fa;
  --ok: #1a7f37; --bad: #c62828; --other: #9a6700; --loss: #1565c0; --acc: #ef6c00; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 40px; }
header { display: flex; align-items: flex-start; justify-content: space-between; gap: 16px; }
.eyebrow { font-size: 12px; letter-spacing: .08em; text-transform: uppercase; color: var(--muted); }
h1 { margin: 2px 0 4px; font-size: 26px; line-height: 1.2; overflow-wrap: anywhere; }
h2 { margin: 0 0 10px; font-size: 17px; }
.meta { margin: 0; color: var(--muted); }
.pill { display: inline-block; padding: 4px 12px; border-radius: 999px; font-weight: 600;
  font-size: 13px; color: #fff; white-space: nowrap; }
.pill.ok { background: var(--ok); } .pill.failed { background: var(--bad); } .pill.other { background: var(--other); }
.cards { display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 10px; margin: 20px 0; }
@media (max-width: 800px) { .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 0; }
.card .label { font-size: 12px; color: var(--muted); }
.card .value { font-size: 20px; font-weight: 600; overflow-wrap: anywhere; }
.card .value.small { font-size: 15px; padding-top: 4px; }
.card.ok .value { color: var(--ok); } .card.failed .value { color: var(--bad); }
section.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px; margin: 14px 0; }
.panel-head { display: flex; align-items: baseline; justify-content: space-between; gap: 12px; flex-wrap: wrap; }
.key { color: var(--muted); font-size: 12px; display: flex; gap: 14px; flex-wrap: wrap; }
.key i { display: inline-block; width: 18px; height: 0; border-top: 3px solid; vertical-align: middle; margin-right: 5px; }
.key i.faint { opacity: .35; border-top-width: 1px; } .key i.dash { border-top-style: dashed; border-top-width: 2px; }
.key i.band { height: 10px; border: none; opacity: .25; }
figure.chart { margin: 0; overflow-x: auto; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; background: var(--bg); }
#settings th { width: 220px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.kind { display: inline-block; padding: 1px 8px; border-radius: 4px; color: #fff; font-size: 12px; font-weight: 600; }
.empty { color: var(--muted); font-style: italic; margin: 4px 0; }
.summary { color: var(--muted); margin: 0 0 10px; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 18px; }
`;

/** One summary card; `tone` colours its value. */
function card(label: string, value: string, tone?: "ok" | "failed", small = false): string {
  return `<div class="card${tone ? ` ${tone}` : ""}"><div class="label">${esc(label)}</div><div class="value${small ? " small" : ""}">${esc(value)}</div></div>`;
}

/** `60,000 per epoch`, or each epoch's count when they differ (a ledger problem worth seeing). */
function samplesPerEpochText(counts: readonly number[]): string {
  if (counts.length === 0) return "—";
  const first = counts[0] ?? 0;
  return counts.every((c) => c === first)
    ? `${formatInt(first)} × ${counts.length}`
    : counts.map(formatInt).join(" · ");
}

function summaryCards(input: TrainingReportInput): string {
  const r = input.result;
  const backend = input.device ? `${input.backend} on ${input.device}` : input.backend;
  return [
    // A job that never evaluated has no accuracy to show; a NaN after steps means divergence.
    card(
      "eval accuracy",
      input.evals.length === 0 && !Number.isFinite(r.accuracy) ? "—" : formatPercent(r.accuracy),
    ),
    card("loss", input.steps.length === 0 && !Number.isFinite(r.loss) ? "—" : formatLoss(r.loss)),
    card("steps", formatInt(r.steps)),
    card("epochs", formatInt(r.epochs)),
    card("wall time", formatDuration(r.wallSeconds)),
    card("replicas consistent", r.replicasConsistent ? "yes" : "NO", r.replicasConsistent ? "ok" : "failed"),
    card("membership changes", formatInt(r.membershipChanges)),
    card(
      input.membership.some((e) => e.killToCommitSeconds !== undefined)
        ? "longest recovery, kill to commit"
        : "longest recovery",
      longestRecovery(input.membership),
    ),
    card("samples per epoch", samplesPerEpochText(r.samplesPerEpoch), undefined, true),
    card("backend", backend, undefined, true),
  ].join("\n");
}

/** The longest recovery in the timeline, or a dash when nothing had to recover. */
function longestRecovery(events: readonly MembershipEvent[]): string {
  const times = recoveryTimes(events);
  return times.length === 0 ? "—" : formatDuration(Math.max(...times));
}

/** Every finite recovery duration in the timeline: from the kill where it is known, else from the record. */
function recoveryTimes(events: readonly MembershipEvent[]): number[] {
  return events
    .map((e) => e.killToCommitSeconds ?? e.recoverySeconds)
    .filter((s): s is number => s !== undefined && Number.isFinite(s));
}

/** A recovery cell: kill → commit with its detection where the kill time is known, else record → commit. */
function recoveryCell(e: MembershipEvent): string {
  if (e.killToCommitSeconds !== undefined && e.detectionSeconds !== undefined)
    return `${formatDuration(e.killToCommitSeconds)} from the kill (detected after ${formatDuration(e.detectionSeconds)})`;
  return e.recoverySeconds === undefined ? "" : formatDuration(e.recoverySeconds);
}

function kindBadge(kind: MembershipEvent["kind"]): string {
  return `<span class="kind kind-${esc(kind)}" style="background:${KIND_COLORS[kind] ?? "#757575"}">${esc(kind)}</span>`;
}

/** One-line digest of failures and recoveries above the timeline table. */
function recoverySummary(events: readonly MembershipEvent[]): string {
  const failures = events.filter((e) => e.kind === "death" || e.kind === "failover").length;
  const times = recoveryTimes(events);
  const parts = [
    `${events.length} event${events.length === 1 ? "" : "s"}`,
    `${failures} failure${failures === 1 ? "" : "s"}`,
  ];
  if (times.length > 0) {
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    parts.push(`recovery mean ${formatDuration(mean)}, max ${formatDuration(Math.max(...times))}`);
  }
  return `<p class="summary">${esc(parts.join(" · "))}</p>`;
}

function timelineTable(events: readonly MembershipEvent[]): string {
  if (events.length === 0) return `<p class="empty">No membership changes during this job.</p>`;
  const rows = [...events]
    .sort((a, b) => a.t - b.t || a.step - b.step)
    .map(
      (e) =>
        `<tr class="event-${esc(e.kind)}"><td class="num">${esc(formatOffset(e.t))}</td><td class="num">${esc(formatInt(e.step))}</td>` +
        `<td>${kindBadge(e.kind)}</td><td class="mono">${esc(e.node)}</td><td>${esc(e.detail ?? "")}</td>` +
        `<td class="num">${esc(recoveryCell(e))}</td></tr>`,
    )
    .join("\n");
  return (
    recoverySummary(events) +
    `<table id="membership-timeline"><thead><tr><th class="num">time</th><th class="num">step</th><th>event</th>` +
    `<th>node</th><th>detail</th><th class="num">recovery</th></tr></thead><tbody>\n${rows}\n</tbody></table>`
  );
}

function settingsTable(input: TrainingReportInput): string {
  const entries: [string, string | number | boolean][] = [
    ["started", formatTime(input.startedAt)],
    ["backend", input.backend],
    ...(input.device ? ([["device", input.device]] as [string, string][]) : []),
    ...Object.entries(input.settings),
  ];
  const rows = entries
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td class="mono">${esc(v)}</td></tr>`)
    .join("\n");
  return `<table id="settings"><tbody>\n${rows}\n</tbody></table>`;
}

/** One entry of a chart's colour key: a swatch class (line, faint, dash, band), its colour, a label. */
type KeyItem = readonly [swatch: string, color: string, text: string];

/** Colour key of a chart, drawn in HTML so it reads the same at any zoom. */
function key(items: readonly KeyItem[]): string {
  const swatch = ([cls, color]: KeyItem): string =>
    `<i class="${esc(cls)}" style="${cls === "band" ? "background" : "border-color"}:${esc(color)}"></i>`;
  return `<div class="key">${items.map((item) => `<span>${swatch(item)}${esc(item[2])}</span>`).join("")}</div>`;
}

/** The whole report page. */
export function renderHtml(input: TrainingReportInput, charts: RenderedCharts, generatedAt: Date): string {
  const tone = statusTone(input.result.status);
  const lossKey = key([
    ["faint", "var(--loss)", "train loss (per step)"],
    ["line", "var(--loss)", "train loss (moving mean)"],
    ["line", "var(--acc)", "eval accuracy (right axis)"],
    ["dash", "#757575", "membership change"],
    ["band", KIND_COLORS.recovered, "recovering"],
  ]);
  const throughputKey = key([
    ["line", "var(--loss)", "samples / s"],
    ["line", "var(--acc)", "members (right axis)"],
  ]);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="flock">
<title>${esc(input.title)} — flock training report</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
  <div>
    <div class="eyebrow">flock training report</div>
    <h1>${esc(input.title)}</h1>
    <p class="meta">started ${esc(formatTime(input.startedAt))} · ${esc(input.backend)}${input.device ? ` on ${esc(input.device)}` : ""} · ${esc(formatDuration(input.result.wallSeconds))} wall</p>
  </div>
  <span class="pill ${tone}" id="status">${esc(input.result.status)}</span>
</header>
<section class="cards" id="summary">
${summaryCards(input)}
</section>
<section class="panel">
  <div class="panel-head"><h2>Loss and accuracy</h2>${lossKey}</div>
  <figure class="chart" id="chart-loss-accuracy">${charts.lossAccuracy}</figure>
</section>
<section class="panel">
  <div class="panel-head"><h2>Throughput and members</h2>${throughputKey}</div>
  <figure class="chart" id="chart-throughput">${charts.throughputMembers}</figure>
</section>
<section class="panel">
  <h2>Membership timeline</h2>
  ${timelineTable(input.membership)}
</section>
<section class="panel">
  <h2>Settings</h2>
  ${settingsTable(input)}
</section>
<footer>generated by flock at ${esc(formatTime(generatedAt.toISOString()))}</footer>
</main>
<script type="application/json" id="flock-report-data">${jsonForScript(input)}</script>
</body>
</html>
`;
}
