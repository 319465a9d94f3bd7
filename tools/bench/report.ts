import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { BalanceResult } from "./balance.js";
import type { MessagingResult } from "./messaging.js";
import type { PredictBenchResult } from "./predict.js";
import type { ReduceResult } from "./reduce.js";
import { LOCAL_STEPS, MODES, type ModeFigureKey } from "./scaling.js";
import { median, sig } from "./stats.js";
import type { TrainingResult } from "./training.js";

/** The machine a run measured. */
export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  /** 1-minute load average when the run started and ended: other work on the machine skews figures. */
  loadAvg: [number, number];
  date: string;
}

/** Everything one `flock bench` run measured. */
export interface BenchReport {
  tellRatio: number;
  askLatencyRatio: number;
  reduceWireRatio: number;
  trainerOverheadRatio: number;
  trainerOverheadRatioStale: number;
  trainerOverheadRatioLocal: number;
  scaling2Local: number;
  scaling2: number;
  scaling2Strong: number;
  rawScaling2: number;
  scalingEfficiency: number;
  scaling2Heavy: number;
  rawScaling2Heavy: number;
  scalingEfficiencyHeavy: number;
  stalenessSpeedup: number;
  fp16Speedup: number;
  int8Speedup: number;
  localStepsSpeedup: number;
  balanceSpeedup: number;
  predictScaling2: number;
  /** Final test accuracy of each job, so a speedup that costs accuracy shows. */
  accuracy: Record<string, number>;
  recoveryMedianS: number;
  failoverS: number;
  peakRssMB: number;
  backend: string;
  cores: number;
  quick: boolean;
  wallSeconds: number;
  machine: MachineInfo;
  messaging: MessagingResult;
  reduce: ReduceResult & { members: number; gradientBytes: number };
  training: TrainingResult;
  balance: BalanceResult;
  predict: PredictBenchResult;
}

/** The headline figures: key, aim, and whether higher is better. */
export const FIGURES = [
  { key: "tellRatio", aim: 0.8, higher: true },
  { key: "askLatencyRatio", aim: 0.7, higher: true },
  { key: "reduceWireRatio", aim: 0.7, higher: true },
  { key: "trainerOverheadRatio", aim: 0.9, higher: true },
  { key: "trainerOverheadRatioStale", aim: undefined, higher: true },
  { key: "trainerOverheadRatioLocal", aim: undefined, higher: true },
  { key: "scaling2", aim: undefined, higher: true },
  { key: "scaling2Strong", aim: undefined, higher: true },
  { key: "rawScaling2", aim: undefined, higher: true },
  { key: "scalingEfficiency", aim: 0.9, higher: true },
  { key: "scaling2Heavy", aim: undefined, higher: true },
  { key: "rawScaling2Heavy", aim: undefined, higher: true },
  { key: "scalingEfficiencyHeavy", aim: undefined, higher: true },
  { key: "scaling2Local", aim: undefined, higher: true },
  { key: "stalenessSpeedup", aim: undefined, higher: true },
  { key: "fp16Speedup", aim: undefined, higher: true },
  { key: "int8Speedup", aim: undefined, higher: true },
  { key: "localStepsSpeedup", aim: undefined, higher: true },
  { key: "balanceSpeedup", aim: undefined, higher: true },
  { key: "predictScaling2", aim: undefined, higher: true },
  { key: "recoveryMedianS", aim: 2.5, higher: false },
  { key: "failoverS", aim: 5, higher: false },
  { key: "peakRssMB", aim: undefined, higher: false },
] as const;

type FigureKey = (typeof FIGURES)[number]["key"];
type ScalingKey = Extract<
  FigureKey,
  | "scaling2"
  | "scaling2Strong"
  | "rawScaling2"
  | "scalingEfficiency"
  | "scaling2Heavy"
  | "rawScaling2Heavy"
  | "scalingEfficiencyHeavy"
>;

/** One sentence per figure: what was measured, and the numbers behind it. */
export function explain(r: BenchReport, key: FigureKey): string {
  const m = r.messaging;
  const t = r.training;
  const n = (x: number) => sig(x).toLocaleString("en-US");
  switch (key) {
    case "tellRatio":
      return `flock tell of a ${m.payloadBytes}-byte message to an actor in another process reached ${n(m.flockTellPerSec)} msgs/s against ${n(m.rawTellPerSec)} raw NATS publishes/s to a subscriber in that process (median round).`;
    case "askLatencyRatio":
      return `median round trip of a flock ask to an echo actor in another process was ${n(m.flockAskUs)} µs against ${n(m.rawAskUs)} µs for a raw NATS request/reply.`;
    case "reduceWireRatio":
      return `one step of ${r.reduce.members} trainers with a ${n(r.reduce.gradientBytes / 1e6)} MB gradient (reduce-scatter to ${r.reduce.members} real reducers, each publishing its new slice once) took ${n(r.reduce.flockStepMs)} ms against ${n(r.reduce.rawStepMs)} ms for raw NATS moving the same ${n(r.reduce.bytesPerStep / 1e6)} MB; the reducers' sums and optimizer steps alone take ${n(r.reduce.reducerArithmeticMs)} ms of it (all members share one process here).`;
    case "trainerOverheadRatio":
      return `a one-worker flock job trained MNIST at ${n(t.oneWorkerSamplesPerSec)} samples/s (steady state, daemon process) against ${n(t.plainSamplesPerSec)} for the plain tfjs loop (same model, batch, data, backend ${t.backend}): a step every ${n(t.oneWorkerStepMs.medianMs)} ms (median; mean ${n(t.oneWorkerStepMs.meanMs)} ms) against ${n(t.plainStepMs)} ms.`;
    case "trainerOverheadRatioStale":
      return `the one-worker job with \`sync: { staleness: 1 }\` (each step computed on the parameters of two steps before, while the step before commits) trained at ${n(t.jobs.oneWorkerStale.samplesPerSec)} samples/s against ${n(t.plainSamplesPerSec)} for the plain loop; test accuracy ${n(t.jobs.oneWorkerStale.accuracy)} against ${n(t.jobs.oneWorker.accuracy)} synchronous.`;
    case "trainerOverheadRatioLocal":
      return `the one-worker job with \`sync: { every: ${LOCAL_STEPS} }\` (${LOCAL_STEPS} Adam steps on the trainer per committed round, one exchange with the reducers a round) trained at ${n(t.jobs.oneWorkerLocal.samplesPerSec)} samples/s against ${n(t.plainSamplesPerSec)} for the plain loop; test accuracy ${n(t.jobs.oneWorkerLocal.accuracy)} against ${n(t.jobs.oneWorker.accuracy)} synchronous.`;
    case "scaling2Local":
      return `two workers with \`sync: { every: ${LOCAL_STEPS} }\` (each with the one-worker batch of ${t.jobs.batch} per inner step) trained at ${runs(t.jobs.modes.local.map((x) => x.samplesPerSec))} samples/s against ${n(t.jobs.oneWorkerLocal.samplesPerSec)} for one worker with the same local steps (${n(t.scaling2Local / t.rawScaling2)} of rawScaling2 ${n(t.rawScaling2)}); test accuracy ${n(t.modes.local.accuracy)} against ${n(t.jobs.oneWorkerLocal.accuracy)}.`;
    case "scaling2":
    case "scaling2Strong":
    case "rawScaling2":
    case "scalingEfficiency":
    case "scaling2Heavy":
    case "rawScaling2Heavy":
    case "scalingEfficiencyHeavy":
      return explainScaling(r, key);
    case "stalenessSpeedup":
    case "fp16Speedup":
    case "int8Speedup":
    case "localStepsSpeedup":
      return explainMode(r, key);
    case "balanceSpeedup":
      return `on two embedded nodes with node-2's trainer slowed ${n(r.balance.slowMsPerSample)} ms a sample, MNIST (global batch ${r.balance.globalBatch}) trained at ${runs(r.balance.samplesPerSec.throughput)} samples/s with \`balance: "throughput"\` against ${runs(r.balance.samplesPerSec.equal)} with equal shares (runs interleaved; median step ${n(r.balance.stepMs.throughput)} ms against ${n(r.balance.stepMs.equal)} ms; node-2's median share ${n(r.balance.slowShare)} of ${r.balance.globalBatch}); test accuracy ${n(r.balance.accuracy.throughput)} against ${n(r.balance.accuracy.equal)}.`;
    case "predictScaling2":
      return `\`flock predict --nats\` of ${n(r.predict.records)} flowers records in ranges of ${r.predict.rangeSize} wrote ${n(r.predict.twoDaemonRecordsPerSec)} records/s with two daemons against ${n(r.predict.oneDaemonRecordsPerSec)} with one (from the first range written to the last; the client, nats-server and the daemons share ${r.cores} cores).`;
    case "recoveryMedianS":
      return `SIGKILL of a trainer's daemon to the next committed step: ${t.recoverySeconds.map((s) => `${n(s)} s`).join(", ")}, of which detection (the kill to the coordinator's record of the death) took ${t.detectionSeconds.map((s) => `${n(s)} s`).join(", ")} (default failure deadline 2 s).`;
    case "failoverS":
      return `SIGKILL of the daemon that held the coordinator's lease to the first step committed by the standby: ${n(t.failoverS)} s, of which ${n(t.failoverDetectionS)} s to the standby's record of the takeover.`;
    case "peakRssMB":
      return `peak resident memory of a daemon (main thread plus its compute worker) during MNIST training, by node: ${Object.entries(
        t.peakRssByNode,
      )
        .map(([k, v]) => `${k} ${Math.round(v)} MB`)
        .join(", ")}.`;
  }
}

/** The sentence of `fp16WireRatio` (a figure of the reduce result, not of {@link FIGURES}). */
function explainFp16(d: ReduceResult): string {
  const n = (x: number) => sig(x).toLocaleString("en-US");
  return `the gradient slices one reduce step sends to reducers on other nodes took ${n(d.gradWireBytes.fp16)} bytes with \`compression: "fp16"\` against ${n(d.gradWireBytes.none)} as float32 (envelopes included); the step took ${n(d.fp16StepMs)} ms against ${n(d.flockStepMs)} ms (ratio ${n(d.fp16StepRatio)}, the trainers' encoding with error feedback included).`;
}

/** Samples/s of a list of runs, with "(median of N)" when there were several. */
function runs(rates: readonly number[]): string {
  const n = (x: number) => sig(x).toLocaleString("en-US");
  return rates.length === 1 ? n(rates[0]!) : `${n(median(rates))} (median of ${rates.map(n).join(", ")})`;
}

function explainScaling(r: BenchReport, key: ScalingKey): string {
  const t = r.training;
  const j = t.jobs;
  const n = (x: number) => sig(x).toLocaleString("en-US");
  const rates = (xs: ReadonlyArray<{ samplesPerSec: number }>) => runs(xs.map((x) => x.samplesPerSec));
  const rawLine = (raw: typeof t.raw) =>
    `two plain tfjs loops (\`plainTrainLoop\`, batch ${j.batch} each) in two worker threads of one process reached ${runs(raw.twoThreadSamplesPerSec)} samples/s together against ${runs(raw.oneThreadSamplesPerSec)} for one loop in one thread (interleaved rounds; one loop's step ${n(raw.oneThreadStepMs)} ms)`;
  const span =
    j.plan.heavyMaxSteps === undefined
      ? `${j.plan.heavyEpochs} epoch(s), evaluated at the end only`
      : `its first ${j.plan.heavyMaxSteps} steps, then cancelled`;
  const heavy = `the heavy model (a text-transformer classifying SpamAssassin messages: 1 block, width 32, 32 tokens, ${span})`;
  switch (key) {
    case "scaling2":
      return `weak scaling: two workers, each in its own daemon process and each with the one-worker job's batch of ${j.batch} (global batch ${2 * j.batch}), trained MNIST at ${rates(j.weak)} samples/s against ${n(t.oneWorkerSamplesPerSec)} for one, on ${r.cores} cores shared with nats-server and the coordinator (${j.plan.epochs} epoch(s) each).`;
    case "scaling2Strong":
      return `strong scaling: two workers sharing the one-worker job's global batch of ${j.batch} (${j.batch / 2} each) trained at ${rates(j.strong)} samples/s against ${n(t.oneWorkerSamplesPerSec)} for one.`;
    case "rawScaling2":
      return `${rawLine(t.raw)}: the most two workers can gain on this machine.`;
    case "scalingEfficiency":
      return `scaling2 ÷ rawScaling2 = ${n(t.scaling2)} ÷ ${n(t.rawScaling2)}: the share of plain tfjs's two-thread gain that two flock workers keep.`;
    case "scaling2Heavy":
      return `weak scaling on ${heavy}: two workers (batch ${j.batch} each) trained at ${n(j.heavyTwoWorkers.samplesPerSec)} samples/s against ${n(j.heavyOneWorker.samplesPerSec)} for one, whose step took ${n(j.heavyOneWorkerStepMs.medianMs)} ms (median; the plain loop's ${n(t.rawHeavy.oneThreadStepMs)} ms).`;
    case "rawScaling2Heavy":
      return `on the heavy model, ${rawLine(t.rawHeavy)}.`;
    case "scalingEfficiencyHeavy":
      return `scaling2Heavy ÷ rawScaling2Heavy = ${n(t.scaling2Heavy)} ÷ ${n(t.rawScaling2Heavy)}.`;
  }
}

function explainMode(r: BenchReport, key: ModeFigureKey): string {
  const t = r.training;
  const mode = MODES.find((m) => m.figure === key)!;
  const n = (x: number) => sig(x).toLocaleString("en-US");
  const rates = (xs: ReadonlyArray<{ samplesPerSec: number }>) => runs(xs.map((x) => x.samplesPerSec));
  return `the two-worker weak job with \`${JSON.stringify(mode.overrides)}\` trained at ${rates(t.jobs.modes[mode.name])} samples/s against ${rates(t.jobs.weak)} in the default synchronous mode (runs interleaved); test accuracy ${n(t.modes[mode.name].accuracy)} against ${n(t.accuracy.twoWorkers ?? Number.NaN)} after ${t.jobs.plan.epochs} epoch(s).`;
}

function verdict(value: number, aim: number | undefined, higher: boolean): string {
  if (aim === undefined) return "";
  return (higher ? value >= aim : value <= aim) ? "met" : "missed";
}

/** Each job's final test accuracy as a (name, value) row: `accuracy.fp16`, … */
function accuracyRows(r: BenchReport): Array<[string, string]> {
  return Object.entries(r.accuracy).map(([k, v]) => [`accuracy.${k}`, String(sig(v))]);
}

/** The figures as a fixed-width table for a terminal. */
export function formatTable(r: BenchReport): string {
  const rows = FIGURES.map((f) => [
    f.key,
    String(sig(r[f.key])),
    f.aim === undefined ? "" : `${f.higher ? "≥" : "≤"} ${f.aim}`,
    verdict(r[f.key], f.aim, f.higher),
  ]);
  rows.push(
    ...accuracyRows(r).map(([k, v]) => [k, v, "", ""]),
    ["backend", r.backend, "", ""],
    ["cores", String(r.cores), "", ""],
  );
  rows.push([
    "fp16WireRatio",
    String(sig(r.reduce.fp16WireRatio)),
    "≤ 0.55",
    verdict(r.reduce.fp16WireRatio, 0.55, false),
  ]);
  const head = ["figure", "value", "aim", ""];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** The results section of BENCHMARKS.md: machine, table, one sentence per figure. */
export function formatMarkdown(r: BenchReport): string {
  const mc = r.machine;
  const lines = [
    `Run: \`flock bench${r.quick ? " --quick" : ""}\`, ${mc.date}, ${sig(r.wallSeconds)} s.`,
    "",
    `Machine: ${mc.cores} cores (${mc.cpuModel}), ${sig(mc.memoryGiB)} GiB memory, Node ${mc.node} on ${mc.platform}, compute backend ${r.backend}; 1-minute load average ${mc.loadAvg[0]} at the start, ${mc.loadAvg[1]} at the end.`,
    "",
    "| figure | value | aim | |",
    "|---|---|---|---|",
    ...FIGURES.map(
      (f) =>
        `| ${f.key} | ${sig(r[f.key])} | ${f.aim === undefined ? "" : `${f.higher ? "≥" : "≤"} ${f.aim}`} | ${verdict(r[f.key], f.aim, f.higher)} |`,
    ),
    ...accuracyRows(r).map(([k, v]) => `| ${k} | ${v} | | |`),
    `| backend | ${r.backend} | | |`,
    `| cores | ${r.cores} | | |`,
    `| fp16WireRatio | ${sig(r.reduce.fp16WireRatio)} | ≤ 0.55 | ${verdict(r.reduce.fp16WireRatio, 0.55, false)} |`,
    "",
    ...FIGURES.map((f) => `- **${f.key}**: ${explain(r, f.key)}`),
    `- **fp16WireRatio**: ${explainFp16(r.reduce)}`,
  ];
  return lines.join("\n");
}

const START = "<!-- bench:results:start -->";
const END = "<!-- bench:results:end -->";

/** Replaces the generated block of a markdown file (between its markers), or creates the file. */
export function writeMarkdown(path: string, r: BenchReport): void {
  const block = `${START}\n${formatMarkdown(r)}\n${END}`;
  if (!existsSync(path)) {
    writeFileSync(path, `# flock benchmarks\n\n${block}\n`);
    return;
  }
  const text = readFileSync(path, "utf8");
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  writeFileSync(
    path,
    a >= 0 && b > a
      ? text.slice(0, a) + block + text.slice(b + END.length)
      : `${text.trimEnd()}\n\n${block}\n`,
  );
}
