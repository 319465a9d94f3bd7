/**
 * The dashboard's page: a static shell (this file) that the script (`client.ts`) fills from the
 * event stream. Every asset is served by the dashboard itself; the page loads nothing from elsewhere.
 * @module
 */
import { escapeHtml } from "../report/format.js";

const CSS = `
:root { color-scheme: light; --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #f6f8fa;
  --ok: #1a7f37; --bad: #c62828; --warn: #9a6700; --idle: #757575; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 18px 16px 40px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: 8px 16px; }
h1 { margin: 0; font-size: 22px; } h2 { margin: 0 0 10px; font-size: 16px; }
.meta { color: var(--muted); font-size: 13px; }
section.panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 14px 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; background: var(--bg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.state { display: inline-block; padding: 1px 8px; border-radius: 4px; color: #fff; font-size: 12px; font-weight: 600; }
.state.alive, .state.running, .state.stepping, .state.committing, .state.finished { background: var(--ok); }
.state.suspect, .state.draining, .state.recovering, .state.resizing, .state.placing { background: var(--warn); }
.state.dead, .state.failed { background: var(--bad); }
.state.left, .state.other { background: var(--idle); }
.job-head { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: baseline; margin-bottom: 6px; }
.job-head b { font-size: 15px; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 16px; color: var(--muted); font-size: 13px; }
.facts span b { color: var(--fg); font-weight: 600; font-variant-numeric: tabular-nums; }
.chart { width: 100%; min-height: 60px; }
.chart svg { display: block; max-width: 100%; height: auto; }
.mark-list { margin: 4px 0 0; padding-left: 18px; font-size: 12px; color: var(--muted); }
.empty { color: var(--muted); font-style: italic; }
.compare-pick { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 8px; }
select { font: inherit; padding: 3px 6px; max-width: 100%; }
#conn.live { color: var(--ok); } #conn.down { color: var(--bad); }
@media (max-width: 640px) {
  main { padding: 10px 8px 28px; } h1 { font-size: 18px; }
  th, td { padding: 4px 6px; } .facts { font-size: 12px; }
}
`;

/** The page's HTML; `cluster` is shown until the first snapshot arrives. */
export function renderPage(cluster: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flock dashboard — ${escapeHtml(cluster)}</title>
<style>${CSS}</style>
<script src="/vendor/vega.min.js"></script>
<script src="/vendor/vega-lite.min.js"></script>
<script type="module" src="/app.js"></script>
</head>
<body>
<main>
<header>
  <h1>flock · <span id="cluster">${escapeHtml(cluster)}</span></h1>
  <div class="meta"><span id="conn">connecting…</span> · epoch <span id="epoch">–</span> · monitor <span id="monitor">–</span></div>
</header>
<section class="panel"><h2>Nodes</h2><div class="scroll"><table id="nodes">
<thead><tr><th>Node</th><th>State</th><th>Incarnation</th><th>Backend</th><th>Slots</th><th>Heartbeat</th><th>Loop lag</th><th>Bad input</th><th>Dead letters</th><th>Memory</th></tr></thead>
<tbody></tbody></table></div><p class="empty" id="no-nodes">No heartbeats heard yet</p></section>
<section id="jobs"></section>
<section class="panel"><h2>Finished jobs</h2><div class="scroll"><table id="finished">
<thead><tr><th>Job</th><th>State</th><th>Steps</th><th>Accuracy</th><th>Loss</th><th>Wall time</th><th>Recoveries</th><th>Report</th></tr></thead>
<tbody></tbody></table></div><p class="empty" id="no-finished">None yet</p></section>
<section class="panel"><h2>Compare runs</h2>
<div class="compare-pick"><select id="cmp-a" aria-label="First run"></select><select id="cmp-b" aria-label="Second run"></select></div>
<div class="chart" id="cmp-chart" data-series="0"></div></section>
</main>
</body>
</html>
`;
}
