/**
 * One job on a fresh cluster (NATS servers, proxies, daemons), with a plan of faults injected
 * while it runs (none for the baseline). Everything it starts is stopped before it returns.
 * @module
 */
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { resolveJobSpec, runJob, type ClusterHandle, type TrainResult } from "../../actors/api.js";
import type { JobSpec, JobSpecInput } from "../../actors/job/spec.js";
import { connectCluster } from "../../actors/remote.js";
import { ChaosCluster } from "./cluster.js";
import { injectFault, type FaultRecord, type JobView } from "./faults.js";
import type { FatalLine, NodeCounters, UnexpectedExit } from "./invariants.js";
import { JobObserver, LeaseReader } from "./observer.js";
import type { PlannedFault } from "./schedule.js";
import type { InjectableBug } from "./bugs.js";
import { recoveryFromKill } from "../report/recovery.js";

/**
 * A job with no committed step for this long after the last fault was healed is stuck
 * (recoveries take ~2–8 s; a restore from a checkpoint after a durability fault ~10–30 s).
 */
const STALL_MS = 60_000;
/**
 * How long the client may go without a result once the job's durable state says it finished:
 * the end event is published once, at most once, and may be lost.
 */
const CLIENT_END_MS = 60_000;
/** How long the driver waits for the job to be back to all nodes after a fault. */
const REJOIN_MS = 30_000;
/** flock cluster name of the system under test. */
const CLUSTER = "chaos";

/** Options of {@link runScenario}. */
export interface ScenarioOptions {
  /** `baseline` or `chaos`: names the job and the log folder. */
  label: string;
  seed: number;
  nodes: number;
  epochs: number;
  plan: readonly PlannedFault[];
  env?: Record<string, string>;
  /** Bugs built into the daemons (see `bugs.ts`). */
  injectBugs?: readonly InjectableBug[];
  /** The job's throughput options. */
  mode?: ChaosMode;
  /** Job spec fields of the model trained (`workload.ts`; default: the MNIST example's). */
  job?: Partial<JobSpecInput>;
  logDir: string;
  progress: (line: string) => void;
}

/** Throughput options the chaos job runs with (default: synchronous, float32). */
export interface ChaosMode {
  staleness?: 0 | 1;
  /** Local optimizer steps per committed step (`sync.every`; default 1). */
  localSteps?: number;
  compression?: "none" | "fp16" | "int8";
  balance?: "equal" | "throughput";
}

/** What one scenario gave. */
export interface ScenarioOutcome {
  result?: TrainResult;
  error?: string;
  observer: JobObserver;
  faults: FaultRecord[];
  submittedAt: number;
  wallSeconds: number;
  unexpectedExits: UnexpectedExit[];
  fatalLines: FatalLine[];
  counters: NodeCounters[];
}

/** The running system and the harness's connections to it. */
interface System {
  cluster: ChaosCluster;
  handle?: ClusterHandle;
  leases?: LeaseReader;
  events?: NodeJS.WritableStream;
}

/** One job on a fresh cluster, under `plan`. */
export async function runScenario(o: ScenarioOptions): Promise<ScenarioOutcome> {
  const logDir = join(o.logDir, o.label);
  mkdirSync(logDir, { recursive: true });
  const started = Date.now();
  const out: ScenarioOutcome = {
    observer: new JobObserver(),
    faults: [],
    submittedAt: started,
    wallSeconds: 0,
    unexpectedExits: [],
    fatalLines: [],
    counters: [],
  };
  let system: System | undefined;
  try {
    system = {
      cluster: await ChaosCluster.start({
        nodes: o.nodes,
        cluster: CLUSTER,
        logDir,
        env: o.env,
        injectBugs: o.injectBugs,
      }),
    };
    system.handle = await connectCluster({ servers: system.cluster.observerUrl, cluster: CLUSTER });
    const handle = system.handle;
    if (!(await waitUntil(() => handle.aliveNodes().length >= o.nodes, 30_000)))
      throw new Error(`only ${handle.aliveNodes().length} of ${o.nodes} daemons seen alive after 30 s`);
    system.leases = await LeaseReader.connect(system.cluster.observerUrl, CLUSTER);
    system.events = createWriteStream(join(logDir, "events.jsonl")).on("error", () => undefined);
    o.progress(`${o.label}: cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await followJob(system as Required<System>, o, out);
  } catch (e) {
    out.error ??= (e as Error).message;
  } finally {
    await stopSystem(system);
  }
  out.wallSeconds = (Date.now() - out.submittedAt) / 1000;
  if (system) {
    out.unexpectedExits = system.cluster.unexpectedExits();
    out.fatalLines = system.cluster.fatalLines();
    out.counters = system.cluster.counters();
  }
  return out;
}

/** Submits the job, injects the plan while it runs, and waits for its end (or a stall). */
async function followJob(s: Required<System>, o: ScenarioOptions, out: ScenarioOutcome): Promise<void> {
  const spec = resolveJobSpec("mnist", {
    ...o.job,
    id: `chaos-${o.seed}-${o.label}`,
    epochs: o.epochs,
    seed: o.seed % 2 ** 31,
    minWorkers: 1,
    maxWorkers: o.nodes,
    sync: { staleness: o.mode?.staleness ?? 0, every: o.mode?.localSteps ?? 1 },
    compression: o.mode?.compression ?? "none",
    balance: o.mode?.balance ?? "equal",
  });
  const ended = new AbortController();
  out.submittedAt = Date.now();
  const job = runJob(s.handle, spec, {
    onEvent: (e) => {
      out.observer.add(e);
      s.events.write(`${JSON.stringify({ received: Date.now(), ...e })}\n`);
    },
  }).then(
    (r) => void (out.result = r),
    (e: Error) => void (out.error = e.message),
  );
  const view: JobView = {
    coordinatorNode: () => s.leases.holderNode(spec.id!),
    step: () => out.observer.step,
    checkpointStep: async () => (await s.leases.jobState(spec.id!))?.checkpointStep,
  };
  const driver = driveFaults(s.cluster, o, view, out, ended.signal);
  const held = o.plan.reduce((a, f) => a + f.holdMs, 0);
  const timeoutMs = 120_000 + o.epochs * 40_000 + o.plan.length * 30_000 + held;
  const verdict = await Promise.race([
    job.then(() => "done"),
    watchdog(out, timeoutMs, ended.signal),
    clientHang(s.leases, spec.id!, ended.signal),
  ]);
  if (verdict !== "done") out.error = `${verdict}; ${await jobDiagnosis(s.leases, spec)}`;
  ended.abort();
  await driver.catch((e: Error) => (out.error ??= `fault driver failed: ${e.message}`));
  out.faults.forEach((f, i) => {
    f.recoverySeconds = out.observer.recoveryAfter(f.injectedAt);
    // A kill's detection: the record of the death (or takeover) it caused, before the next fault.
    if (f.kind === "kill" || f.kind === "coordinator")
      f.detectionSeconds = recoveryFromKill(
        { node: f.target, at: f.injectedAt },
        out.observer.membership,
        out.faults[i + 1]?.injectedAt,
      ).detectionSeconds;
  });
  await s.cluster.scrapeAll();
}

async function stopSystem(s: System | undefined): Promise<void> {
  if (!s) return;
  await s.handle?.close().catch(() => undefined);
  await s.leases?.close();
  await s.cluster.stop();
  await new Promise<void>((r) => (s.events ? s.events.end(r) : r()));
}

/**
 * Injects the plan's faults in order. Each waits for its step, and for the previous fault to have
 * recovered: healed, a step committed after the heal, and the job back to all nodes (given up on
 * after {@link REJOIN_MS} and recorded as `rejoined: false`).
 */
async function driveFaults(
  cluster: ChaosCluster,
  o: ScenarioOptions,
  view: JobView,
  out: ScenarioOutcome,
  ended: AbortSignal,
): Promise<void> {
  const observer = out.observer;
  for (const fault of o.plan) {
    if (!(await waitUntil(() => observer.step >= fault.atStep, 600_000, ended))) return;
    const record = await injectFault(cluster, view, fault, (r) => {
      out.faults.push(r);
      o.progress(
        `fault ${fault.index + 1}/${o.plan.length}: ${r.kind} ${r.target} at step ${r.atStep} — ${r.detail}`,
      );
    });
    const healedAt = record.healedAt ?? Date.now();
    await waitUntil(() => observer.lastCommitAt > healedAt, 120_000, ended);
    const whole = await waitUntil(
      () => observer.members >= o.nodes && observer.lastCommitAt > healedAt,
      REJOIN_MS,
      ended,
    );
    if (ended.aborted) return;
    record.rejoined = whole;
    const rec = observer.recoveryAfter(record.injectedAt);
    o.progress(
      `  recovery ${rec === undefined ? "—" : `${rec.toFixed(2)} s`}; members ${observer.members}/${o.nodes}${whole ? "" : ` (not back to ${o.nodes} after ${REJOIN_MS / 1000} s)`}`,
    );
  }
}

/**
 * Resolves with why the job is deemed stuck: no step committed for {@link STALL_MS} since the
 * last commit or the last heal (placement included; never while a fault is held), or `timeoutMs`
 * since submission. Never resolves once `signal` aborts.
 */
async function watchdog(out: ScenarioOutcome, timeoutMs: number, signal: AbortSignal): Promise<string> {
  const observer = out.observer;
  for (let i = 0; i < 10_000_000 && !signal.aborted; i++) {
    const now = Date.now();
    const holding = out.faults.some((f) => f.healedAt === undefined);
    const healed = Math.max(0, ...out.faults.map((f) => f.healedAt ?? 0));
    if (!holding && now - Math.max(out.submittedAt, observer.lastCommitAt, healed) > STALL_MS)
      return `job stalled: no step committed for ${STALL_MS / 1000} s (last committed step ${observer.step})`;
    if (now - out.submittedAt > timeoutMs)
      return `job did not finish within ${timeoutMs / 1000} s (last committed step ${observer.step})`;
    await sleep(250);
  }
  return new Promise(() => undefined);
}

/**
 * Resolves when the job's durable state record has said it ended for {@link CLIENT_END_MS}, and
 * the client (runJob, which follows the job's events) still has no result: the end event was
 * lost and the client does not read the record. Polls every 2 s; never resolves once `signal` aborts.
 */
async function clientHang(leases: LeaseReader, job: string, signal: AbortSignal): Promise<string> {
  let endedAt: number | undefined;
  for (let i = 0; i < 1_000_000 && !signal.aborted; i++) {
    await sleep(2000);
    const state = signal.aborted ? undefined : await leases.jobState(job);
    if (state && state.state !== "running") endedAt ??= Date.now();
    if (state && endedAt !== undefined && Date.now() - endedAt > CLIENT_END_MS)
      return `the client hangs: the job's durable state says ${state.state} at step ${state.step}, and runJob (actors/api.ts) returned nothing in the ${CLIENT_END_MS / 1000} s since (its job.finished event was lost)`;
  }
  return new Promise(() => undefined);
}

/** Who holds the coordinator's lease and what the job's status line says, for a stuck job's report. */
async function jobDiagnosis(leases: LeaseReader, spec: JobSpec): Promise<string> {
  const holder = await leases.holderNode(spec.id!);
  const record = await leases.jobRecord(spec.id!);
  return `coordinator lease: ${holder ?? "nobody"}; job record: ${record ?? "none"}`;
}

/** Polls `done` every 50 ms until it holds (true), `timeoutMs` passes or `signal` aborts (false). */
export async function waitUntil(
  done: () => boolean,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1_000_000; i++) {
    if (done()) return true;
    if (signal?.aborted || Date.now() > deadline) return false;
    await sleep(50);
  }
  return false;
}
