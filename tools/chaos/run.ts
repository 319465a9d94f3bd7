/**
 * A chaos run: a fault-free baseline, then the same job on the same cluster setup under a seeded
 * plan of faults, then the invariants. Every process it starts is stopped on every path.
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveJobSpec } from "../../actors/api.js";
import { loadDataset } from "../../actors/compute/datasets.js";
import { checkInvariants, restoresOf, type InvariantName, type InvariantResult } from "./invariants.js";
import { runScenario, type ChaosMode, type ScenarioOutcome } from "./scenario.js";

export type { ChaosMode } from "./scenario.js";
import { DURABILITY_FAULT_KINDS, FAULT_KINDS, planFaults, type FaultKind } from "./schedule.js";
import type { InjectableBug } from "./bugs.js";
import { chaosJobFields, defaultModelEpochs, type ChaosModel } from "./workload.js";

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  seed: number;
  /** flock daemons (default 3). */
  nodes?: number;
  /** Length of the faulty phase the plan aims at, in seconds: about one fault per 10 s (default 60). */
  durationSec?: number;
  /** Fault kinds to draw from (default: all). Each is injected at least once. */
  faults?: readonly FaultKind[];
  /** Epochs of the job (default: enough for the plan, see {@link defaultEpochs}). */
  epochs?: number;
  /** Largest accepted |accuracy − baseline accuracy| (default {@link ACCURACY_TOLERANCE}). */
  tolerance?: number;
  /**
   * Bugs built into every daemon, in both runs (they then run `faulty-daemon.ts`, not `flock`):
   * to prove the harness notices a broken build.
   */
  injectBugs?: readonly InjectableBug[];
  /** The job's throughput options (both runs): `sync` (staleness, local steps), `compression` and `balance` of the job spec. */
  mode?: ChaosMode;
  /** The model trained (default `mlp`, MNIST's; `transformer`: a text-transformer on SpamAssassin text). */
  model?: ChaosModel;
  /** Skip the baseline run and compare with this accuracy (from an earlier baseline of the same seed and epochs). */
  baselineAccuracy?: number;
  /** Keep logs here (default: a temp dir, deleted when the run passes). */
  logDir?: string;
  /** Progress lines for people. */
  onProgress?: (line: string) => void;
}

/** A fault in the report. */
export interface ReportedFault {
  kind: FaultKind;
  target: string;
  /** Seconds after the job was submitted. */
  time: number;
  /** Injection → the commit of the first step started after it. */
  recoverySeconds: number | null;
  /** A kill's injection → the coordinator's record of the loss (null: not a kill, or none recorded). */
  detectionSeconds: number | null;
  detail: string;
  rejoined: boolean | null;
}

/** What a chaos run reports (`--json` prints it as the last line). */
export interface ChaosReport {
  seed: number;
  faults: ReportedFault[];
  invariants: Record<InvariantName, InvariantResult>;
  accuracy: number | null;
  baselineAccuracy: number | null;
  recoveryP50: number | null;
  recoveryMax: number | null;
  /** Committed steps redone after restores from a checkpoint (the result's; null: no result). */
  stepsLost: number | null;
  /** Restores from a checkpoint the job went through. */
  restores: number;
  passed: boolean;
  nodes: number;
  epochs: number;
  tolerance: number;
  wallSeconds: number;
  baselineWallSeconds: number | null;
  chaosWallSeconds: number | null;
  replay: string;
  logDir: string | null;
}

/** Default accuracy tolerance: a few hundred test digits of 2,000, well above seed-to-seed noise. */
export const ACCURACY_TOLERANCE = 0.03;
/** Seconds of faulty phase per planned fault. */
const SECONDS_PER_FAULT = 10;
/** Committed steps per epoch of the MNIST example (8,000 samples, global batch 64). */
const MNIST_STEPS_PER_EPOCH = 125;
/**
 * Committed steps per second of faulty phase, as measured with 3 nodes on 2 cores: ~20 on average
 * (faster while a node is out, slower while one rejoins). Only sizes the job: the plan spreads
 * faults over steps, and each fault waits for the last one's recovery and rejoin, so a job sized
 * for less time than its faults take ends before the last ones (the faultsInjected invariant).
 */
const STEPS_PER_SECOND = 20;

/** Epochs that hold a faulty phase of about `durationSec` (at least 2). */
export function defaultEpochs(durationSec: number): number {
  return Math.max(2, Math.ceil((durationSec * STEPS_PER_SECOND) / MNIST_STEPS_PER_EPOCH));
}

/** The command line that replays a run. */
export function replayCommand(
  o: Required<Pick<ChaosOptions, "seed" | "nodes" | "durationSec" | "faults" | "epochs">> &
    Pick<ChaosOptions, "injectBugs" | "baselineAccuracy" | "mode" | "model">,
): string {
  const bugs = o.injectBugs?.length ? ` --inject-bug ${o.injectBugs.join(",")}` : "";
  const staleness = o.mode?.staleness ? ` --staleness ${o.mode.staleness}` : "";
  const local = (o.mode?.localSteps ?? 1) > 1 ? ` --local-steps ${o.mode?.localSteps}` : "";
  const compression =
    o.mode?.compression && o.mode.compression !== "none" ? ` --compression ${o.mode.compression}` : "";
  const baseline = o.baselineAccuracy === undefined ? "" : ` --baseline-accuracy ${o.baselineAccuracy}`;
  const balance = o.mode?.balance === "throughput" ? " --balance throughput" : "";
  const model = o.model && o.model !== "mlp" ? ` --model ${o.model}` : "";
  return `npx flock chaos${bugs}${model}${staleness}${local}${compression}${balance} --seed ${o.seed} --nodes ${o.nodes} --duration ${o.durationSec} --faults ${o.faults.join(",")} --epochs ${o.epochs}${baseline} --json`;
}

/** Runs the baseline and the faulty run, checks the invariants and reports. */
export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const nodes = opts.nodes ?? 3;
  const durationSec = opts.durationSec ?? 60;
  const kinds = [...(opts.faults ?? FAULT_KINDS)];
  const model = opts.model ?? "mlp";
  const epochs = opts.epochs ?? defaultModelEpochs(model, defaultEpochs(durationSec), durationSec);
  const tolerance = opts.tolerance ?? ACCURACY_TOLERANCE;
  const progress = opts.onProgress ?? (() => undefined);
  const logDir = opts.logDir ?? mkdtempSync(join(tmpdir(), "flock-chaos-"));
  const replay = replayCommand({
    seed: opts.seed,
    nodes,
    durationSec,
    faults: kinds,
    epochs,
    injectBugs: opts.injectBugs,
    baselineAccuracy: opts.baselineAccuracy,
    mode: opts.mode,
    model,
  });
  if (nodes < 2) throw new RangeError("--nodes must be at least 2: a coordinator fault needs a standby node");

  const job = chaosJobFields(model, logDir);
  const spec = resolveJobSpec("mnist", job);
  const dataset = await loadDataset(spec.dataset);
  // A committed step is a round of H batches with local steps (`sync.every`).
  const totalSteps =
    epochs * Math.ceil(dataset.trainSize / (spec.globalBatch * (opts.mode?.localSteps ?? 1)));
  const count = Math.max(kinds.length, Math.round(durationSec / SECONDS_PER_FAULT));
  const checkpointEvery = spec.checkpointEvery;
  const plan = planFaults({ seed: opts.seed, kinds, count, totalSteps, checkpointEvery });
  progress(
    `chaos seed ${opts.seed}: ${nodes} nodes, ${epochs} epoch(s) of ${spec.name}, ${plan.length} faults (${plan.map((f) => `${f.kind}@${f.atStep}`).join(", ")}); logs in ${logDir}`,
  );

  const scenario = {
    seed: opts.seed,
    nodes,
    epochs,
    injectBugs: opts.injectBugs,
    logDir,
    progress,
    ...(opts.mode ? { mode: opts.mode } : {}),
    job,
  };
  let baseline: ScenarioOutcome | undefined;
  if (opts.baselineAccuracy === undefined) {
    progress("baseline: the same job with no faults");
    baseline = await runScenario({ ...scenario, label: "baseline", plan: [] });
    progress(
      `baseline: ${baseline.result ? `${baseline.result.status}, accuracy ${baseline.result.accuracy.toFixed(4)} in ${baseline.wallSeconds.toFixed(1)} s` : `no result (${baseline.error})`}`,
    );
  } else progress(`baseline: skipped, comparing with the given accuracy ${opts.baselineAccuracy}`);
  const baselineAccuracy =
    opts.baselineAccuracy ??
    (baseline?.result?.status === "completed" ? baseline.result.accuracy : undefined);
  progress("chaos: the same job under faults");
  const chaos = await runScenario({ ...scenario, label: "chaos", plan });
  progress(
    `chaos: ${chaos.result ? `${chaos.result.status}, accuracy ${chaos.result.accuracy.toFixed(4)} in ${chaos.wallSeconds.toFixed(1)} s` : `no result (${chaos.error})`}`,
  );

  const invariants = checkInvariants({
    epochs,
    datasetSize: dataset.trainSize,
    result: chaos.result,
    error: chaos.error,
    steps: chaos.observer.steps,
    hashes: chaos.observer.hashes,
    baselineAccuracy,
    baselineError:
      baseline && baselineAccuracy === undefined
        ? (baseline.error ?? `status ${baseline.result?.status}`)
        : undefined,
    tolerance,
    unexpectedExits: [...(baseline?.unexpectedExits ?? []), ...chaos.unexpectedExits],
    fatalLines: [...(baseline?.fatalLines ?? []), ...chaos.fatalLines],
    counters: chaos.counters,
    plannedFaults: plan.length,
    injectedFaults: chaos.faults.length,
    membership: chaos.observer.membership,
    checkpointEvery,
    durabilityFaults: chaos.faults.filter((f) => DURABILITY_FAULT_KINDS.includes(f.kind)).length,
  });
  const faults: ReportedFault[] = chaos.faults.map((f) => ({
    kind: f.kind,
    target: f.target,
    time: round((f.injectedAt - chaos.submittedAt) / 1000),
    recoverySeconds: f.recoverySeconds === undefined ? null : round(f.recoverySeconds),
    detectionSeconds: f.detectionSeconds === undefined ? null : round(f.detectionSeconds),
    detail: f.detail,
    rejoined: f.rejoined ?? null,
  }));
  const recoveries = faults
    .flatMap((f) => (f.recoverySeconds === null ? [] : [f.recoverySeconds]))
    .sort((a, b) => a - b);
  const passed = Object.values(invariants).every((i) => i.ok);
  if (passed && !opts.logDir) rmSync(logDir, { recursive: true, force: true });
  return {
    seed: opts.seed,
    faults,
    invariants,
    accuracy: chaos.result?.accuracy ?? null,
    baselineAccuracy: baselineAccuracy ?? null,
    recoveryP50: recoveries.length > 0 ? recoveries[Math.floor((recoveries.length - 1) / 2)]! : null,
    recoveryMax: recoveries.at(-1) ?? null,
    stepsLost: chaos.result ? (chaos.result.stepsLost ?? 0) : null,
    restores: restoresOf({ result: chaos.result, membership: chaos.observer.membership }).length,
    passed,
    nodes,
    epochs,
    tolerance,
    wallSeconds: round((Date.now() - started) / 1000),
    baselineWallSeconds: baseline ? round(baseline.wallSeconds) : null,
    chaosWallSeconds: round(chaos.wallSeconds),
    replay,
    logDir: passed && !opts.logDir ? null : logDir,
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
