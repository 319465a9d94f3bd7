/**
 * Layout of the membership markers drawn over the charts: which label goes in which lane above
 * the plot, and which step ranges were spent recovering. Pure functions, so the layout is tested
 * without rendering.
 */
import type { MembershipEvent, MembershipKind, StepSample } from "./types.js";

/** Marker colours by kind, chosen apart from the series colours (blue, orange). */
export const KIND_COLORS: Readonly<Record<MembershipKind, string>> = {
  join: "#2e7d32",
  death: "#c62828",
  failover: "#8e24aa",
  recovered: "#00838f",
  suspect: "#b08900",
  leave: "#757575",
  resize: "#6d4c41",
};

/** Kinds in legend order: the ones a reader looks for first come first. */
export const KIND_ORDER: readonly MembershipKind[] = [
  "death",
  "failover",
  "recovered",
  "join",
  "leave",
  "suspect",
  "resize",
];

/** One marker label: events of one kind at one step, merged. */
export interface MarkerLabel {
  step: number;
  kind: MembershipKind;
  text: string;
  /** 0 is the lane nearest the plot. */
  lane: number;
  /** `right` near the plot's right edge, so the label ends at its rule instead of overflowing. */
  align: "left" | "right";
}

/** A step range between a failure and the recovery that closed it. */
export interface RecoveryBand {
  fromStep: number;
  toStep: number;
  seconds: number;
}

const MAX_LABEL_CHARS = 36;
/** Rough width of a 10 px sans-serif character; vega has no canvas here to measure with. */
const CHAR_PX = 6;
const LABEL_GAP_PX = 8;

/** Text of a marker label, e.g. `death node-b` or `join ×3: a, b, c`. */
export function labelText(kind: MembershipKind, nodes: readonly string[]): string {
  const text = nodes.length === 1 ? `${kind} ${nodes[0]}` : `${kind} ×${nodes.length}: ${nodes.join(", ")}`;
  return text.length > MAX_LABEL_CHARS ? `${text.slice(0, MAX_LABEL_CHARS - 1)}…` : text;
}

/**
 * Merges events of one kind at one step and assigns each label the lowest lane where it does
 * not overlap the label before it. Labels that find no lane are left out (their rule is still
 * drawn, and the timeline table lists every event). `toPx` maps a step into [0, `widthPx`].
 */
export function layoutMarkerLabels(
  events: readonly MembershipEvent[],
  toPx: (step: number) => number,
  widthPx: number,
  maxLanes: number,
): MarkerLabel[] {
  const groups = new Map<string, { step: number; kind: MembershipKind; nodes: string[] }>();
  for (const e of events) {
    const key = `${e.step}\u0000${e.kind}`;
    const group = groups.get(key) ?? { step: e.step, kind: e.kind, nodes: [] };
    group.nodes.push(e.node);
    groups.set(key, group);
  }
  const sorted = [...groups.values()].sort(
    (a, b) => a.step - b.step || KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind),
  );
  const laneEnds: number[] = [];
  const labels: MarkerLabel[] = [];
  for (const g of sorted) {
    const text = labelText(g.kind, g.nodes);
    const x = toPx(g.step);
    const width = text.length * CHAR_PX;
    const align = x + width > widthPx ? "right" : "left";
    const start = align === "left" ? x : x - width;
    let lane = laneEnds.findIndex((end) => end <= start);
    if (lane === -1 && laneEnds.length < maxLanes) lane = laneEnds.length;
    if (lane === -1) continue;
    laneEnds[lane] = (align === "left" ? x + width : x) + LABEL_GAP_PX;
    labels.push({ step: g.step, kind: g.kind, text, lane, align });
  }
  return labels;
}

/** The last committed step at or before time `t` (seconds since start), or `fallback`. */
function stepAtTime(steps: readonly StepSample[], t: number, fallback: number): number {
  let best: number | undefined;
  for (const s of steps) {
    if (s.t <= t && (best === undefined || s.step > best)) best = s.step;
  }
  return best ?? fallback;
}

/** Step ranges spent recovering, from each `recovered` event that carries its duration. */
export function recoveryBands(
  events: readonly MembershipEvent[],
  steps: readonly StepSample[],
): RecoveryBand[] {
  const bands: RecoveryBand[] = [];
  for (const e of events) {
    if (e.kind !== "recovered" || e.recoverySeconds === undefined) continue;
    if (!Number.isFinite(e.recoverySeconds) || e.recoverySeconds <= 0) continue;
    const fromStep = stepAtTime(steps, e.t - e.recoverySeconds, steps[0]?.step ?? e.step);
    bands.push({ fromStep: Math.min(fromStep, e.step), toStep: e.step, seconds: e.recoverySeconds });
  }
  return bands;
}
