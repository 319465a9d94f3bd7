/**
 * The mini-BERT report: each phase's own training report (`flock train --report`'s page, in
 * `DIR/<phase>/report.html`), and `DIR/index.html`, which puts the phases side by side: the
 * pre-training (masked-LM) loss curve, the fine-tuning and from-scratch loss and accuracy curves
 * on one chart, and the figures of the run. Self-contained pages (inline SVG, no script).
 * @module
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import { renderSvg } from "../../tools/report/charts.js";
import { escapeHtml as esc } from "../../tools/report/format.js";
import { writeTrainingReport } from "../../tools/report/index.js";
import { PHASES, type MiniBertRun, type MiniBertSummary, type PhaseName, type PhaseRun } from "./workflow.js";

const PHASE_COLORS: Record<PhaseName, string> = {
  pretrain: "#6a1b9a",
  finetune: "#1565c0",
  scratch: "#ef6c00",
};
const PHASE_TITLES: Record<PhaseName, string> = {
  pretrain: "pre-training (masked LM)",
  finetune: "fine-tuning from the pre-trained encoder",
  scratch: "from scratch",
};

type Row = Record<string, number | string>;

/** Step losses and eval accuracies of some phases as rows for one vega-lite chart. */
function rows(run: MiniBertRun, phases: readonly PhaseName[]): { steps: Row[]; evals: Row[] } {
  const steps = phases.flatMap((p) =>
    run[p].timeline.steps
      .filter((s) => Number.isFinite(s.loss))
      .map((s) => ({ phase: p, step: s.step, loss: s.loss })),
  );
  const evals = phases.flatMap((p) =>
    run[p].result.evals
      .filter((e) => Number.isFinite(e.accuracy))
      .map((e) => ({ phase: p, step: e.step, accuracy: e.accuracy })),
  );
  return { steps, evals };
}

/** A chart of the phases' training loss (and, when `accuracy`, their eval accuracy on a right axis). */
function phaseChart(
  run: MiniBertRun,
  phases: readonly PhaseName[],
  title: string,
  accuracy: boolean,
): TopLevelSpec {
  const data = rows(run, phases);
  const color = {
    field: "phase",
    type: "nominal",
    scale: { domain: [...phases], range: phases.map((p) => PHASE_COLORS[p]) },
    legend: { title: null, orient: "top" },
  };
  const x = { field: "step", type: "quantitative", axis: { title: "step" } };
  const loss = {
    data: { values: data.steps },
    mark: { type: "line", strokeWidth: 1.6 },
    encoding: {
      x,
      y: { field: "loss", type: "quantitative", scale: { zero: false }, axis: { title: "train loss" } },
      color,
    },
  };
  const acc = {
    data: { values: data.evals },
    mark: { type: "line", point: true, strokeDash: [4, 3], strokeWidth: 1.6 },
    encoding: {
      x,
      y: {
        field: "accuracy",
        type: "quantitative",
        scale: { domain: [0, 1] },
        axis: { title: "eval accuracy (dashed)", orient: "right", format: ".0%", grid: false },
      },
      color,
    },
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    width: 880,
    height: 260,
    background: "#ffffff",
    layer: accuracy ? [loss, acc] : [loss],
    resolve: { scale: { y: "independent" } },
  } as TopLevelSpec;
}

const fmt = (n: number, digits = 3) => (Number.isFinite(n) ? n.toFixed(digits) : String(n));

function figuresTable(s: MiniBertSummary): string {
  const row = (label: string, value: string) => `<tr><th>${esc(label)}</th><td>${esc(value)}</td></tr>`;
  return `<table>
${row("pre-training: masked-token accuracy", fmt(s.pretrainMaskedAccuracy))}
${row("pre-training: perplexity", fmt(s.pretrainPerplexity, 1))}
${row("pre-training: loss, first → last tenth of steps", `${fmt(s.pretrainLossStart)} → ${fmt(s.pretrainLossEnd)}`)}
${row(`fine-tuned accuracy (${s.labelled} labelled, ${s.testExamples} held out)`, fmt(s.finetuneAccuracy))}
${row("from-scratch accuracy (same data, tokenizer, epochs)", fmt(s.scratchAccuracy))}
${row("workers · backend", `${s.workers} · ${s.backend}`)}
${PHASES.map((p) => row(`${p}: samples/s (median step) · seconds`, `${fmt(s.samplesPerSec[p], 1)} · ${fmt(s.phaseSeconds[p], 1)}`)).join("\n")}
${row("wall time (s)", fmt(s.wallSeconds, 1))}
</table>`;
}

async function phaseReport(
  run: PhaseRun,
  dir: string,
  settings: Record<string, string | number>,
): Promise<void> {
  const input = run.timeline.reportInput(run.spec, run.result, {
    ...settings,
    phase: run.phase,
    epochs: run.spec.epochs,
    globalBatch: run.spec.globalBatch,
    optimizer: `${run.spec.optimizer.name} lr=${run.spec.optimizer.lr}`,
    seed: run.spec.seed,
  });
  await writeTrainingReport(input, join(dir, run.phase));
}

/**
 * Writes the phase reports and the overview page into `dir`; returns the overview's path.
 * `settings` (transport, sizes) are shown on every phase's page.
 */
export async function writeMiniBertReport(
  run: MiniBertRun,
  summary: MiniBertSummary,
  dir: string,
  settings: Record<string, string | number>,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const p of PHASES) await phaseReport(run[p], dir, settings);
  const [pretrain, classifier] = await Promise.all([
    renderSvg(phaseChart(run, ["pretrain"], "Pre-training: masked-LM loss", false)),
    renderSvg(phaseChart(run, ["finetune", "scratch"], "Classifier: fine-tuned vs from scratch", true)),
  ]);
  const links = PHASES.map(
    (p) => `<li><a href="${p}/report.html">${esc(PHASE_TITLES[p])}</a> — job ${esc(run[p].result.job)}</li>`,
  ).join("\n");
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mini-BERT on flock</title>
<style>body{font:14px/1.45 system-ui,sans-serif;max-width:960px;margin:24px auto;padding:0 16px;color:#1f2328}
table{border-collapse:collapse;margin:12px 0}th,td{border:1px solid #d8dee4;padding:4px 10px;text-align:left}
th{font-weight:500;color:#444}figure{margin:16px 0}</style></head>
<body><h1>mini-BERT: masked-LM pre-training, then spam/ham fine-tuning</h1>
${figuresTable(summary)}
<figure>${pretrain}</figure>
<figure>${classifier}</figure>
<h2>Each phase's own report</h2><ul>${links}</ul>
</body></html>
`;
  const path = join(dir, "index.html");
  await writeFile(path, html, "utf8");
  return path;
}
