/**
 * A chaos run: a fault-free baseline, then the same job on the same cluster setup under a seeded
 * plan of faults, then the invariants. Every process it starts is stopped on every path.
 * @module
 */
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { resolveJobSpec, runJob, type ClusterHandle, type TrainResult } from "../api.js";
import { jobNames } from "../job/names.js";
import { loadDataset } from "../compute/datasets.js";
import { connectCluster } from "../remote.js";
import { ChaosCluster } from "./cluster.js";
import { injectFault, type FaultRecord } from "./faults.js";
import {
  checkInvariants,
  type InvariantName,
  type InvariantResult,
  type ObservedResult,
} from "./invariants.js";
import { JobObserver, LeaseReader } from "./observer.js";
import { FAULT_KINDS, planFaults, type FaultKind, type PlannedFault } from "./schedule.js";

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
  /** Extra environment of every daemon (e.g. `FLOCK_INJECT_BUG`), in both runs. */
  env?: Record<string, string>;
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
  recoverySeconds: number | null;
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
/** A job with no committed step for this long is stuck (the longest recovery seen is ~10 s). */
const STALL_MS = 60_000;
/** How long the driver waits for the job to be back to all nodes after a fault. */
const REJOIN_MS = 30_000;
/** Seconds of faulty phase per planned fault. */
const SECONDS_PER_FAULT = 10;
/** Committed steps per epoch of the MNIST example (8,000 samples, global batch 64). */
const MNIST_STEPS_PER_EPOCH = 125;
/**
 * Committed steps per second of faulty phase, as measured with 3 nodes on 2 cores (~15 fault-free,
 * fewer while faults stall the job). Only sizes the job: the plan spreads faults over steps.
 */
const STEPS_PER_SECOND = 10;

/** Epochs that hold a faulty phase of about `durationSec` (at least 2). */
export function defaultEpochs(durationSec: number): number {
  return Math.max(2, Math.ceil((durationSec * STEPS_PER_SECOND) / MNIST_STEPS_PER_EPOCH));
}

/** The command line that replays a run. */
export function replayCommand(
  o: Required<Pick<ChaosOptions, "seed" | "nodes" | "durationSec" | "faults" | "epochs">> &
    Pick<ChaosOptions, "env" | "baselineAccuracy">,
): string {
  const env = Object.entries(o.env ?? {})
    .map(([k, v]) => `${k}=${v} `)
    .join("");
  const baseline = o.baselineAccuracy === undefined ? "" : ` --baseline-accuracy ${o.baselineAccuracy}`;
  return `${env}npx flock chaos --seed ${o.seed} --nodes ${o.nodes} --duration ${o.durationSec} --faults ${o.faults.join(",")} --epochs ${o.epochs}${baseline} --json`;
}

/** Runs the baseline and the faulty run, checks the invariants and reports. */
export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const nodes = opts.nodes ?? 3;
  const durationSec = opts.durationSec ?? 60;
  const kinds = [...(opts.faults ?? FAULT_KINDS)];
  const epochs = opts.epochs ?? defaultEpochs(durationSec);
  const tolerance = opts.tolerance ?? ACCURACY_TOLERANCE;
  const progress = opts.onProgress ?? (() => undefined);
  const logDir = opts.logDir ?? mkdtempSync(join(tmpdir(), "flock-chaos-"));
  const replay = replayCommand({
    seed: opts.seed,
    nodes,
    durationSec,
    faults: kinds,
    epochs,
    env: opts.env,
    baselineAccuracy: opts.baselineAccuracy,
  });
  if (nodes < 2) throw new RangeError("--nodes must be at least 2: a coordinator fault needs a standby node");

  const dataset = await loadDataset(resolveJobSpec("mnist").dataset);
  const totalSteps = epochs * Math.ceil(dataset.trainSize / 64);
  const count = Math.max(kinds.length, Math.round(durationSec / SECONDS_PER_FAULT));
  const plan = planFaults({ seed: opts.seed, kinds, count, totalSteps });
  progress(
    `chaos seed ${opts.seed}: ${nodes} nodes, ${epochs} epoch(s) of mnist, ${plan.length} faults (${plan.map((f) => `${f.kind}@${f.atStep}`).join(", ")}); logs in ${logDir}`,
  );

  const scenario = { seed: opts.seed, nodes, epochs, env: opts.env, logDir, progress };
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
    result: chaos.result as ObservedResult | undefined,
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
  });
  const faults: ReportedFault[] = chaos.faults.map((f) => ({
    kind: f.kind,
    target: f.target,
    time: round((f.injectedAt - chaos.submittedAt) / 1000),
    recoverySeconds: f.recoverySeconds === undefined ? null : round(f.recoverySeconds),
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

interface ScenarioOptions {
  label: string;
  seed: number;
  nodes: number;
  epochs: number;
  plan: readonly PlannedFault[];
  env?: Record<string, string>;
  logDir: string;
  progress: (line: string) => void;
}

interface ScenarioOutcome {
  result?: TrainResult;
  error?: string;
  observer: JobObserver;
  faults: FaultRecord[];
  submittedAt: number;
  wallSeconds: number;
  unexpectedExits: ReturnType<ChaosCluster["unexpectedExits"]>;
  fatalLines: ReturnType<ChaosCluster["fatalLines"]>;
  counters: ReturnType<ChaosCluster["counters"]>;
}

/** One job on a fresh cluster, under `plan`. */
async function runScenario(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const logDir = join(o.logDir, o.label);
  mkdirSync(logDir, { recursive: true });
  const started = Date.now();
  const observer = new JobObserver();
  const faults: FaultRecord[] = [];
  let result: TrainResult | undefined;
  let error: string | undefined;
  let submittedAt = started;
  let cluster: ChaosCluster | undefined;
  let handle: Awaited<ReturnType<typeof connectCluster>> | undefined;
  let leases: LeaseReader | undefined;
  let closeEvents = async (): Promise<void> => undefined;
  try {
    cluster = await ChaosCluster.start({ nodes: o.nodes, cluster: "chaos", logDir, env: o.env });
    handle = await connectCluster({ servers: cluster.observerUrl, cluster: "chaos" });
    await waitUntil(() => handle!.aliveNodes().length >= o.nodes, 30_000);
    leases = await LeaseReader.connect(cluster.observerUrl, "chaos");
    const spec = resolveJobSpec("mnist", {
      id: `chaos-${o.seed}-${o.label}`,
      epochs: o.epochs,
      seed: o.seed % 2 ** 31,
      minWorkers: 1,
      maxWorkers: o.nodes,
    });
    const jobTimeoutMs = 120_000 + o.epochs * 40_000 + o.plan.length * 30_000;
    const ended = new AbortController();
    submittedAt = Date.now();
    o.progress(
      `${o.label}: cluster up in ${((submittedAt - started) / 1000).toFixed(1)} s; job ${spec.id} submitted`,
    );
    const events = createWriteStream(join(logDir, "events.jsonl"));
    events.on("error", () => undefined);
    closeEvents = () => new Promise<void>((r) => events.end(r));
    const job = runJob(handle, spec, {
      onEvent: (e) => {
        observer.add(e);
        events.write(`${JSON.stringify({ received: Date.now(), ...e })}\n`);
      },
    }).then(
      (r) => (result = r),
      (e: Error) => (error = e.message),
    );
    const lease = leases;
    const driver = driveFaults(
      cluster,
      o.plan,
      observer,
      { coordinatorNode: () => lease.holderNode(spec.id!), step: () => observer.step },
      o.nodes,
      ended.signal,
      faults,
      o.progress,
    );
    const verdict = await Promise.race([
      job.then(() => "done"),
      watchdog(observer, submittedAt, jobTimeoutMs, ended.signal),
    ]);
    if (verdict !== "done") error = `${verdict}; ${await coordinatorStatus(handle, lease, spec.id!)}`;
    ended.abort();
    await driver.catch((e: Error) => (error ??= `fault driver failed: ${e.message}`));
    for (const f of faults) f.recoverySeconds = observer.recoveryAfter(f.injectedAt);
    await cluster.scrapeAll();
  } catch (e) {
    error ??= (e as Error).message;
  } finally {
    await handle?.close().catch(() => undefined);
    await leases?.close();
    await cluster?.stop();
    await closeEvents();
  }
  return {
    result,
    error,
    observer,
    faults,
    submittedAt,
    wallSeconds: (Date.now() - submittedAt) / 1000,
    unexpectedExits: cluster?.unexpectedExits() ?? [],
    fatalLines: cluster?.fatalLines() ?? [],
    counters: cluster?.counters() ?? [],
  };
}

/**
 * Injects the plan's faults in order. Each waits for its step, and for the previous fault to have
 * recovered: healed, a step committed after the heal, and the job back to all `nodes` members
 * (given up on after {@link REJOIN_MS} and recorded as `rejoined: false`).
 */
async function driveFaults(
  cluster: ChaosCluster,
  plan: readonly PlannedFault[],
  observer: JobObserver,
  view: { coordinatorNode(): Promise<string | undefined>; step(): number },
  nodes: number,
  ended: AbortSignal,
  out: FaultRecord[],
  progress: (line: string) => void,
): Promise<void> {
  for (const fault of plan) {
    if (!(await waitUntil(() => observer.step >= fault.atStep, 600_000, ended))) return;
    const record = await injectFault(cluster, view, fault, (r) => {
      out.push(r);
      progress(
        `fault ${fault.index + 1}/${plan.length}: ${r.kind} ${r.target} at step ${r.atStep} — ${r.detail}`,
      );
    });
    const healedAt = record.healedAt ?? Date.now();
    await waitUntil(() => observer.lastCommitAt > healedAt, 120_000, ended);
    const whole = await waitUntil(
      () => observer.members >= nodes && observer.lastCommitAt > healedAt,
      REJOIN_MS,
      ended,
    );
    if (ended.aborted) return;
    record.rejoined = whole;
    const rec = observer.recoveryAfter(record.injectedAt);
    progress(
      `  recovery ${rec === undefined ? "—" : `${rec.toFixed(2)} s`}; members ${observer.members}/${nodes}${whole ? "" : ` (not back to ${nodes} after ${REJOIN_MS / 1000} s)`}`,
    );
  }
}

/**
 * Resolves with why the job is deemed stuck: no step committed for {@link STALL_MS} (placement
 * included), or `timeoutMs` since submission. Never resolves once `signal` aborts.
 */
async function watchdog(
  observer: JobObserver,
  since: number,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<string> {
  for (let i = 0; i < 1_000_000 && !signal.aborted; i++) {
    const now = Date.now();
    const last = Math.max(since, observer.lastCommitAt);
    if (now - last > STALL_MS)
      return `job stalled: no step committed for ${STALL_MS / 1000} s (last committed step ${observer.step})`;
    if (now - since > timeoutMs)
      return `job did not finish within ${timeoutMs / 1000} s (last committed step ${observer.step})`;
    await sleep(250);
  }
  return new Promise(() => undefined);
}

/** What the coordinator says about itself (for the report of a stuck job), in a line. */
async function coordinatorStatus(handle: ClusterHandle, leases: LeaseReader, job: string): Promise<string> {
  const holder = await leases.holderNode(job);
  if (!holder) return "no node holds the coordinator's lease";
  try {
    const reply = await handle.client
      .ref(`${holder}/${jobNames.coordinator(job)}`)
      .ask({ type: "coord.status" }, { timeoutMs: 3000 });
    return `coordinator on ${holder}: ${JSON.stringify(reply)}`;
  } catch (e) {
    return `coordinator on ${holder} did not answer its status: ${(e as Error).message}`;
  }
}

/** Polls `done` every 50 ms until it holds (true), `timeoutMs` passes or `signal` aborts (false). */
async function waitUntil(done: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1_000_000; i++) {
    if (done()) return true;
    if (signal?.aborted || Date.now() > deadline) return false;
    await sleep(50);
  }
  return false;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
