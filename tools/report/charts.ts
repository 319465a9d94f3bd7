/**
 * The report's charts as vega-lite specs, rendered to SVG strings on the server (vega's `none`
 * renderer needs no canvas and no DOM), so the report shows them without running any script.
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { KIND_COLORS, KIND_ORDER, layoutMarkerLabels, recoveryBands } from "./markers.js";
import type { MembershipEvent, StepSample, TrainingReportInput } from "./types.js";

/** Plot size in pixels, axes and legends excluded. */
const WIDTH = 920;
const HEIGHT = 280;
const THROUGHPUT_HEIGHT = 190;
const LANE_PX = 14;
const MAX_LANES = 4;
/** Above this many steps the series are averaged in buckets: an SVG path per step gets heavy. */
const MAX_POINTS = 1500;
const LOSS_COLOR = "#1565c0";
const ACCURACY_COLOR = "#ef6c00";
/**
 * Fixed y-axis widths: both charts get the same plot origin and width, so the markers of one
 * step line up across the page.
 */
const Y_EXTENT = { minExtent: 48, maxExtent: 48 } as const;
const FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Helvetica, Arial, sans-serif";

/** SVG strings of the two report charts. */
export interface RenderedCharts {
  /** Training loss and eval accuracy over steps, with membership markers. */
  lossAccuracy: string;
  /** Throughput and member count over steps, with membership markers. */
  throughputMembers: string;
}

type Row = Record<string, number | string | null>;

/** A finite number, or null, which vega-lite leaves out of lines and scales. */
function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/**
 * Rows for the charts, with a trailing mean of the loss over a window that grows with the run,
 * so per-step noise does not hide the trend. Non-finite losses are left out of the mean.
 */
function chartRows(steps: readonly StepSample[]): Row[] {
  const window = Math.min(50, Math.max(1, Math.round(steps.length / 40)));
  const rows: Row[] = [];
  const recent: number[] = [];
  let sum = 0;
  for (const s of steps) {
    if (Number.isFinite(s.loss)) {
      recent.push(s.loss);
      sum += s.loss;
      if (recent.length > window) sum -= recent.shift() ?? 0;
    }
    rows.push({
      step: s.step,
      epoch: s.epoch,
      loss: finite(s.loss),
      lossSmooth: Number.isFinite(s.loss) && recent.length > 0 ? sum / recent.length : null,
      members: finite(s.members),
      samplesPerSec: finite(s.samplesPerSec),
    });
  }
  return rows;
}

/** Averages rows in buckets down to at most `max` rows; members keep the bucket's minimum. */
export function downsample(rows: readonly Row[], max: number): Row[] {
  if (rows.length <= max) return [...rows];
  const size = Math.ceil(rows.length / max);
  const out: Row[] = [];
  for (let i = 0; i < rows.length; i += size) {
    const bucket = rows.slice(i, i + size);
    const mean = (key: string): number | null => {
      const vs = bucket.map((r) => r[key]).filter((v): v is number => typeof v === "number");
      return vs.length === 0 ? null : vs.reduce((a, b) => a + b, 0) / vs.length;
    };
    const members = bucket.map((r) => r.members).filter((v): v is number => typeof v === "number");
    out.push({
      step: bucket[bucket.length - 1]?.step ?? null,
      epoch: bucket[0]?.epoch ?? null,
      loss: mean("loss"),
      lossSmooth: mean("lossSmooth"),
      members: members.length === 0 ? null : Math.min(...members),
      samplesPerSec: mean("samplesPerSec"),
    });
  }
  return out;
}

/** First step of every epoch after the first: where the epoch boundaries are drawn. */
function epochStarts(steps: readonly StepSample[]): Row[] {
  const rows: Row[] = [];
  for (let i = 1; i < steps.length; i++) {
    const prev = steps[i - 1];
    const cur = steps[i];
    if (prev && cur && cur.epoch !== prev.epoch) rows.push({ step: cur.step, label: `epoch ${cur.epoch}` });
  }
  return rows;
}

/** Shared x domain of both charts, so their markers line up. */
function stepDomain(input: TrainingReportInput): [number, number] {
  const all = [
    ...input.steps.map((s) => s.step),
    ...input.evals.map((e) => e.step),
    ...input.membership.map((m) => m.step),
  ].filter(Number.isFinite);
  const lo = Math.min(0, ...all);
  return [lo, Math.max(lo + 1, ...all)];
}

/** The step axis, shared by both charts: fixed domain, whole-number ticks. */
function stepX(domain: [number, number]) {
  return {
    field: "step",
    type: "quantitative",
    title: "step",
    scale: { domain, nice: false, zero: false },
    axis: { tickMinStep: 1 },
  } as const;
}

/** Layers drawing membership changes: recovery bands, rules and (optionally) labels. */
function markerLayers(
  input: TrainingReportInput,
  domain: [number, number],
  height: number,
  withLabels: boolean,
): TopLevelSpec[] {
  const toPx = (step: number): number => ((step - domain[0]) / (domain[1] - domain[0])) * WIDTH;
  const events: MembershipEvent[] = input.membership.filter((m) => Number.isFinite(m.step));
  const labels = withLabels ? layoutMarkerLabels(events, toPx, WIDTH, MAX_LANES) : [];
  const labelY = (lane: number): number => -6 - lane * LANE_PX;
  const kinds = KIND_ORDER.filter((k) => events.some((e) => e.kind === k));
  const color = {
    field: "kind",
    type: "nominal",
    title: "membership",
    scale: { domain: kinds, range: kinds.map((k) => KIND_COLORS[k]) },
    legend: withLabels ? { orient: "bottom", direction: "horizontal", symbolDash: [5, 3] } : null,
  } as const;
  const x = { field: "step", type: "quantitative" } as const;
  const bands = recoveryBands(events, input.steps);
  const layers: TopLevelSpec[] = [];
  if (bands.length > 0) {
    layers.push({
      data: { values: bands.map((b) => ({ ...b })) },
      mark: { type: "rect", color: KIND_COLORS.recovered, opacity: 0.12 },
      encoding: {
        x: { field: "fromStep", type: "quantitative" },
        x2: { field: "toStep" },
      },
    } as TopLevelSpec);
  }
  if (events.length > 0) {
    const tops = new Map(labels.map((l) => [`${l.step}\u0000${l.kind}`, labelY(l.lane) + 4]));
    layers.push({
      data: {
        values: events.map((e) => ({
          step: e.step,
          kind: e.kind,
          top: tops.get(`${e.step}\u0000${e.kind}`) ?? 0,
        })),
      },
      mark: { type: "rule", strokeDash: [5, 3], strokeWidth: 1.4, opacity: 0.85 },
      encoding: {
        x,
        y: { field: "top", type: "quantitative", scale: null },
        y2: { value: height },
        color,
      },
    } as TopLevelSpec);
  }
  for (const align of ["left", "right"] as const) {
    const aligned = labels.filter((l) => l.align === align);
    if (aligned.length === 0) continue;
    layers.push({
      data: { values: aligned.map((l) => ({ step: l.step, kind: l.kind, text: l.text, y: labelY(l.lane) })) },
      mark: {
        type: "text",
        align,
        baseline: "bottom",
        dx: align === "left" ? 2 : -2,
        fontSize: 10,
        fontWeight: 600,
      },
      encoding: { x, y: { field: "y", type: "quantitative", scale: null }, text: { field: "text" }, color },
    } as TopLevelSpec);
  }
  return layers;
}

/** Dotted epoch boundaries with their labels along the bottom of the plot. */
function epochLayers(steps: readonly StepSample[], height: number): TopLevelSpec[] {
  const starts = epochStarts(steps);
  if (starts.length === 0) return [];
  return [
    {
      data: { values: starts },
      layer: [
        {
          mark: { type: "rule", color: "#9e9e9e", strokeDash: [2, 3] },
          encoding: { x: { field: "step", type: "quantitative" } },
        },
        {
          mark: {
            type: "text",
            align: "left",
            baseline: "bottom",
            dx: 3,
            dy: -3,
            fontSize: 10,
            color: "#757575",
          },
          encoding: {
            x: { field: "step", type: "quantitative" },
            y: { value: height },
            text: { field: "label" },
          },
        },
      ],
    } as TopLevelSpec,
  ];
}

/** A centred note on an empty plot, e.g. for a job that failed before its first step. */
function emptyNote(text: string, height: number): TopLevelSpec {
  return {
    data: { values: [{}] },
    mark: { type: "text", fontSize: 14, color: "#757575" },
    encoding: { x: { value: WIDTH / 2 }, y: { value: height / 2 }, text: { value: text } },
  } as TopLevelSpec;
}

/** Top-level settings shared by both charts. */
function frame(title?: string): Partial<TopLevelSpec> {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: WIDTH,
    height: HEIGHT,
    background: "white",
    padding: 8,
    ...(title === undefined ? {} : { title: { text: title, anchor: "start", offset: 12, fontSize: 15 } }),
    config: {
      font: FONT,
      axis: {
        labelFontSize: 11,
        titleFontSize: 12,
        titleFontWeight: 600,
        gridColor: "#eeeeee",
        domainColor: "#9e9e9e",
        tickColor: "#9e9e9e",
      },
      legend: { labelFontSize: 11, titleFontSize: 11, symbolType: "stroke", symbolStrokeWidth: 2 },
      view: { stroke: "#e0e0e0" },
    },
  } as Partial<TopLevelSpec>;
}

/** Spec of the loss and accuracy chart; `title` is set for the standalone SVG. */
export function lossAccuracySpec(input: TrainingReportInput, title?: string): TopLevelSpec {
  const domain = stepDomain(input);
  const rows = downsample(chartRows(input.steps), MAX_POINTS);
  const evals = input.evals.map((e) => ({
    step: e.step,
    accuracy: finite(e.accuracy),
    loss: finite(e.loss),
  }));
  const markers = markerLayers(input, domain, HEIGHT, true);
  const x = stepX(domain);
  const lossAxis = { title: "train loss", titleColor: LOSS_COLOR, ...Y_EXTENT };
  const loss = {
    data: { values: rows },
    layer: [
      {
        mark: { type: "line", color: LOSS_COLOR, opacity: 0.22, strokeWidth: 1 },
        encoding: { x, y: { field: "loss", type: "quantitative", axis: lossAxis, scale: { zero: false } } },
      },
      {
        mark: { type: "line", color: LOSS_COLOR, strokeWidth: 2.2 },
        encoding: { x, y: { field: "lossSmooth", type: "quantitative", axis: lossAxis } },
      },
    ],
  };
  const accuracyY = {
    field: "accuracy",
    type: "quantitative",
    scale: { domain: [0, 1] },
    axis: {
      title: "eval accuracy",
      titleColor: ACCURACY_COLOR,
      orient: "right",
      format: ".0%",
      grid: false,
      ...Y_EXTENT,
    },
  };
  const accuracy = {
    data: { values: evals },
    encoding: { x: { field: "step", type: "quantitative" }, y: accuracyY },
    layer: [
      { mark: { type: "line", color: ACCURACY_COLOR, strokeWidth: 2 } },
      { mark: { type: "point", color: ACCURACY_COLOR, filled: true, size: 30, opacity: 1 } },
    ],
  };
  const empty = input.steps.length === 0 ? [emptyNote("No training steps were committed", HEIGHT)] : [];
  return {
    ...frame(title),
    layer: [...epochLayers(input.steps, HEIGHT), ...markers, loss, accuracy, ...empty],
    resolve: { scale: { y: "independent" } },
  } as TopLevelSpec;
}

/** Spec of the throughput and member-count chart. */
export function throughputSpec(input: TrainingReportInput): TopLevelSpec {
  const domain = stepDomain(input);
  const rows = downsample(chartRows(input.steps), MAX_POINTS);
  const maxMembers = rows.reduce((m, r) => (typeof r.members === "number" ? Math.max(m, r.members) : m), 1);
  const markers = markerLayers(input, domain, THROUGHPUT_HEIGHT, false);
  const x = stepX(domain);
  const throughput = {
    mark: { type: "line", color: LOSS_COLOR, strokeWidth: 1.6 },
    encoding: {
      x,
      y: {
        field: "samplesPerSec",
        type: "quantitative",
        axis: { title: "samples / s", titleColor: LOSS_COLOR, format: ",~f", ...Y_EXTENT },
      },
    },
  };
  const members = {
    mark: { type: "line", color: ACCURACY_COLOR, strokeWidth: 2.2, interpolate: "step-after" },
    encoding: {
      x,
      y: {
        field: "members",
        type: "quantitative",
        scale: { domain: [0, maxMembers + 1], nice: false },
        axis: {
          title: "members",
          ...Y_EXTENT,
          titleColor: ACCURACY_COLOR,
          orient: "right",
          tickMinStep: 1,
          format: "d",
          grid: false,
        },
      },
    },
  };
  const empty = input.steps.length === 0 ? [emptyNote("No throughput recorded", THROUGHPUT_HEIGHT)] : [];
  return {
    ...frame(),
    height: THROUGHPUT_HEIGHT,
    layer: [
      ...epochLayers(input.steps, THROUGHPUT_HEIGHT),
      ...markers,
      { data: { values: rows }, layer: [throughput, members], resolve: { scale: { y: "independent" } } },
      ...empty,
    ],
    resolve: { scale: { y: "independent" } },
  } as TopLevelSpec;
}

/** Renders a vega-lite spec to an SVG string with vega's headless view. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Renders both charts; the loss chart gets `title` only when one is given (standalone SVG). */
export async function renderCharts(input: TrainingReportInput): Promise<RenderedCharts> {
  const [lossAccuracy, throughputMembers] = await Promise.all([
    renderSvg(lossAccuracySpec(input)),
    renderSvg(throughputSpec(input)),
  ]);
  return { lossAccuracy, throughputMembers };
}
