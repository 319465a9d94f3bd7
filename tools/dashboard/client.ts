/**
 * The page's script (served as `/app.js`, an ES module): follows `/events` (server-sent events, no
 * polling), applies each delta with the tested `applyDelta` of `delta.ts` (served as
 * `/lib/delta.js`), and draws nodes, jobs and curves. Charts are vega-lite specs rendered by vega to
 * SVG, the report's library; every text from the cluster goes in through `textContent`, never as
 * HTML. Each chart carries `data-points` (loss points drawn) and `data-marks` (membership marks),
 * which the browser test reads.
 * @module
 */
import { KIND_COLORS } from "../report/markers.js";

const SCRIPT = String.raw`
import { applyDelta } from "/lib/delta.js";

const COLORS = __COLORS__;
const LOSS = "#1565c0", ACC = "#ef6c00", OTHER = "#6a1b9a";
let state = null;
let queued = false;
const drawn = new Map(); // job id -> { key, view }
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
const pill = (s) => el("span", { class: "state " + (/^[a-z]+$/.test(s) ? s : "other"), "data-field": "state" }, s);
const num = (v, d) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(d));
const bytes = (b) => (b === null ? "–" : (b / 1048576).toFixed(0) + " MiB");
const ended = (j) => j.endedAt !== null;

function connect() {
  const es = new EventSource("/events");
  es.addEventListener("open", () => { $("conn").textContent = "live"; $("conn").className = "live"; });
  es.addEventListener("error", () => { $("conn").textContent = "reconnecting…"; $("conn").className = "down"; });
  es.addEventListener("snapshot", (m) => { state = JSON.parse(m.data); schedule(); });
  es.addEventListener("delta", (m) => {
    if (!state) return;
    const next = applyDelta(state, JSON.parse(m.data));
    // A delta for another version means a message was missed: reconnecting brings a snapshot.
    if (next) { state = next; schedule(); } else { es.close(); state = null; setTimeout(connect, 200); }
  });
}

function schedule() {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => { queued = false; render(); });
}

function render() {
  $("cluster").textContent = state.cluster;
  $("epoch").textContent = String(state.epoch);
  $("monitor").textContent = state.monitor || "–";
  document.body.dataset.version = String(state.version);
  renderNodes();
  renderJobs();
  renderFinished();
  renderCompare();
}

function renderNodes() {
  const body = $("nodes").tBodies[0];
  body.replaceChildren(...state.nodes.map((n) => el("tr", { "data-node": n.id, "data-state": n.state },
    el("td", {}, n.id), el("td", {}, pill(n.state)), el("td", {}, n.inc), el("td", {}, n.backend || n.device),
    el("td", { class: "num" }, n.freeSlots + "/" + n.slots + " free"),
    el("td", { class: "num", "data-field": "heartbeat" }, (n.heartbeatAgeMs / 1000).toFixed(1) + " s ago"),
    el("td", { class: "num" }, num(n.lagMs, 0) + " ms"),
    el("td", { class: "num" }, n.badInput === null ? "–" : n.badInput),
    el("td", { class: "num" }, n.deadLetters === null ? "–" : n.deadLetters),
    el("td", { class: "num" }, bytes(n.rssBytes)))));
  $("no-nodes").hidden = state.nodes.length > 0;
}

function renderJobs() {
  const box = $("jobs");
  const running = state.jobs.filter((j) => !ended(j));
  const keep = new Set(running.map((j) => j.id));
  for (const c of [...box.children]) if (!keep.has(c.dataset.job)) { c.remove(); drop(c.dataset.job); }
  for (const j of running) {
    let card = box.querySelector('[data-job="' + CSS.escape(j.id) + '"]');
    if (!card) {
      card = el("section", { class: "panel job", "data-job": j.id },
        el("div", { class: "job-head" }, el("b", {}, "Job " + j.id), el("span", { "data-field": "pill" })),
        el("div", { class: "facts" }), el("div", { class: "chart", "data-points": "0", "data-marks": "0" }),
        el("ul", { class: "mark-list", "data-field": "marks" }));
      box.append(card);
    }
    card.querySelector('[data-field="pill"]').replaceChildren(pill(j.state));
    const rec = j.recoverySeconds.length ? j.recoverySeconds.map((s) => s.toFixed(2) + " s").join(", ") : "–";
    const fact = (k, v, f) => el("span", {}, k + " ", el("b", { "data-field": f }, v));
    card.querySelector(".facts").replaceChildren(
      fact("step", j.step, "step"), fact("epoch", j.epochs ? Math.min(j.epoch + 1, j.epochs) + "/" + j.epochs : j.epoch, "epoch"),
      fact("members", j.members.join(", ") || j.memberCount, "members"), fact("samples/s", num(j.samplesPerSec, 0), "rate"),
      fact("recoveries", rec, "recovery"));
    // Not a class selector: vega's SVG names its mark groups "marks".
    card.querySelector('[data-field="marks"]').replaceChildren(...j.marks.slice(-8).map((m) => el("li", { "data-kind": m.kind },
      "step " + m.step + ": " + m.kind + " " + m.node + (m.recoverySeconds !== undefined ? " (recovered in " + m.recoverySeconds.toFixed(2) + " s)" : "") +
      (m.source === "cluster" ? " (heartbeats stopped)" : ""))));
    draw(j.id, card.querySelector(".chart"), [j]);
  }
}

function renderFinished() {
  const done = state.jobs.filter(ended).sort((a, b) => b.endedAt - a.endedAt);
  $("finished").tBodies[0].replaceChildren(...done.map((j) => {
    const r = j.result;
    const link = j.report ? el("a", { href: j.report }, "report") : "–";
    return el("tr", { "data-job": j.id }, el("td", {}, j.id), el("td", {}, pill(j.state)),
      el("td", { class: "num" }, r ? r.steps : j.step), el("td", { class: "num" }, r && r.accuracy !== null ? (r.accuracy * 100).toFixed(1) + "%" : "–"),
      el("td", { class: "num" }, r ? num(r.loss, 4) : "–"), el("td", { class: "num" }, r ? r.wallSeconds.toFixed(1) + " s" : "–"),
      el("td", { class: "num" }, j.recoverySeconds.length), el("td", {}, link, j.error ? " " + j.error : ""));
  }));
  $("no-finished").hidden = done.length > 0;
}

function renderCompare() {
  const ids = state.jobs.map((j) => j.id);
  // By default the two runs seen most recently: the one before, and the latest.
  const recent = [...state.jobs].sort((a, b) => a.updatedAt - b.updatedAt).map((j) => j.id);
  for (const [sel, pick] of [[$("cmp-a"), recent.at(-2)], [$("cmp-b"), recent.at(-1)]]) {
    const cur = sel.value;
    if ([...sel.options].map((o) => o.value).join() !== ids.join())
      sel.replaceChildren(...ids.map((id) => el("option", { value: id }, id)));
    sel.value = ids.includes(cur) ? cur : (pick || "");
    sel.onchange = () => schedule();
  }
  const chosen = [...new Set([$("cmp-a").value, $("cmp-b").value])].map((id) => state.jobs.find((j) => j.id === id)).filter(Boolean);
  $("cmp-chart").dataset.series = String(chosen.length);
  draw("\u0000compare", $("cmp-chart"), chosen);
}

function drop(id) {
  const d = drawn.get(id);
  if (d) { d.view.finalize(); drawn.delete(id); }
}

/** (Re)draws a chart when what it shows changed: one job's curves and marks, or two jobs' losses overlaid. */
function draw(id, box, jobs) {
  const width = Math.max(240, box.clientWidth - 70);
  const key = width + "|" + jobs.map((j) => j.id + ":" + j.loss.length + ":" + (j.loss.at(-1) || {}).step + ":" + j.evals.length + ":" + j.marks.length).join();
  if (drawn.get(id)?.key === key) return;
  drop(id);
  box.dataset.points = String(jobs.reduce((n, j) => n + j.loss.length, 0));
  box.dataset.marks = String(jobs.reduce((n, j) => n + j.marks.length, 0));
  if (jobs.every((j) => j.loss.length === 0)) { box.replaceChildren(el("p", { class: "empty" }, "No steps yet")); return; }
  box.replaceChildren();
  const spec = jobs.length === 1 ? single(jobs[0], width) : overlay(jobs, width);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "svg", container: box, hover: false });
  drawn.set(id, { key, view });
  view.runAsync().catch((e) => console.error("chart", e));
}

const x = { field: "step", type: "quantitative", title: "step", axis: { tickMinStep: 1 } };

function markLayer(job) {
  if (job.marks.length === 0) return [];
  const kinds = [...new Set(job.marks.map((m) => m.kind))];
  return [{
    data: { values: job.marks.map((m) => ({ step: m.step, kind: m.kind, node: m.node })) },
    mark: { type: "rule", strokeDash: [5, 3], strokeWidth: 1.6 },
    encoding: { x: { field: "step", type: "quantitative" },
      color: { field: "kind", type: "nominal", title: "membership", scale: { domain: kinds, range: kinds.map((k) => COLORS[k] || "#555") }, legend: { orient: "bottom" } },
      tooltip: [{ field: "kind" }, { field: "node" }, { field: "step" }] },
  }];
}

function single(job, width) {
  const loss = { data: { values: job.loss }, mark: { type: "line", color: LOSS, interpolate: "monotone" },
    encoding: { x, y: { field: "loss", type: "quantitative", title: "training loss", axis: { titleColor: LOSS } } } };
  const layers = [{ layer: [loss, ...markLayer(job)] }];
  if (job.evals.length > 0)
    layers.push({ data: { values: job.evals }, mark: { type: "line", color: ACC, point: true },
      encoding: { x, y: { field: "accuracy", type: "quantitative", title: "eval accuracy", scale: { domain: [0, 1] }, axis: { orient: "right", format: "%", titleColor: ACC } } } });
  return { $schema: "https://vega.github.io/schema/vega-lite/v6.json", width, height: 200, layer: layers,
    resolve: { scale: { y: "independent" } }, config: { view: { stroke: null } } };
}

function overlay(jobs, width) {
  const values = jobs.flatMap((j) => j.loss.map((p) => ({ step: p.step, loss: p.loss, job: j.id })));
  return { $schema: "https://vega.github.io/schema/vega-lite/v6.json", width, height: 200, data: { values },
    mark: { type: "line", interpolate: "monotone" },
    encoding: { x, y: { field: "loss", type: "quantitative", title: "training loss" },
      color: { field: "job", type: "nominal", scale: { range: [LOSS, OTHER] }, legend: { orient: "bottom" } } },
    config: { view: { stroke: null } } };
}

// A chart's key holds its width: a resize redraws only the charts whose width changed.
addEventListener("resize", () => { if (state) schedule(); });
connect();
`;

/** The page's script, with the report's marker colours. */
export function clientScript(): string {
  return SCRIPT.replace("__COLORS__", JSON.stringify(KIND_COLORS));
}
