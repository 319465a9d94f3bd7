/**
 * `flock chaos`: a seeded chaos run against real processes on this machine, checked against the
 * invariants; exit code 0 only when every invariant holds.
 * @module
 */
import { InvalidArgumentError, Option, type Command } from "commander";
import { usageErrorsExit2 } from "../cli/options.js";
import { runChaos, type ChaosReport } from "./run.js";
import { FAULT_KINDS, parseFaultKinds, type FaultKind } from "./schedule.js";
import { INJECTABLE_BUGS, parseInjectableBugs, type InjectableBug } from "./bugs.js";
import { CHAOS_MODELS, type ChaosModel } from "./workload.js";

interface ChaosFlags {
  seed?: number;
  nodes: number;
  duration: number;
  faults: FaultKind[];
  epochs?: number;
  tolerance?: number;
  logDir?: string;
  baselineAccuracy?: number;
  injectBug?: InjectableBug[];
  staleness?: 0 | 1;
  localSteps?: number;
  compression?: "none" | "fp16" | "int8";
  balance?: "equal" | "throughput";
  model: ChaosModel;
  json?: boolean;
}

function intFlag(flag: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${flag} must be an integer ≥ ${min}, got "${value}"`);
    return n;
  };
}

/** Registers `flock chaos`. */
export function registerChaosCommand(program: Command): void {
  const cmd = program
    .command("chaos")
    .description(
      `Run a job on local daemons under seeded faults (${FAULT_KINDS.join(", ")}) and check the invariants`,
    )
    .option(
      "--seed <n>",
      "Seed of the fault plan and the job (default: from the clock, printed)",
      intFlag("--seed", 0),
    )
    .option("--nodes <n>", "Flock daemons", intFlag("--nodes", 2), 3)
    .option(
      "--duration <sec>",
      "Length of the faulty phase to aim at: one fault per ~10 s, at least one of each kind",
      intFlag("--duration", 1),
      60,
    )
    .addOption(
      new Option("--faults <kinds>", `Fault kinds, comma-separated (${FAULT_KINDS.join(",")})`)
        .argParser((v: string) => {
          try {
            return parseFaultKinds(v);
          } catch (e) {
            throw new InvalidArgumentError((e as Error).message);
          }
        })
        .default([...FAULT_KINDS], "all"),
    )
    .option("--epochs <n>", "Epochs of the job (default: enough for --duration)", intFlag("--epochs", 1))
    .option(
      "--tolerance <x>",
      "Largest accepted |accuracy - baseline accuracy| (default 0.03)",
      (v: string) => {
        const x = Number(v);
        if (!(x >= 0 && x <= 1)) throw new InvalidArgumentError(`--tolerance must be in [0, 1], got "${v}"`);
        return x;
      },
    )
    .option(
      "--baseline-accuracy <x>",
      "Skip the baseline run and compare with this accuracy (of an earlier baseline, same seed and epochs)",
      (v: string) => {
        const x = Number(v);
        if (!(x >= 0 && x <= 1))
          throw new InvalidArgumentError(`--baseline-accuracy must be in [0, 1], got "${v}"`);
        return x;
      },
    )
    .option(
      "--log-dir <dir>",
      "Keep the daemons' and servers' logs here (default: a temp dir, kept only when the run fails)",
    )
    .option(
      "--inject-bug <names>",
      `Build deliberate bugs into the daemons (${INJECTABLE_BUGS.join(", ")}), to check that the run fails`,
      (v: string) => {
        try {
          return parseInjectableBugs(v);
        } catch (e) {
          throw new InvalidArgumentError((e as Error).message);
        }
      },
    )
    .option(
      "--staleness <k>",
      "Steps of weight staleness of the job (sync.staleness: 0 or 1)",
      (v: string) => {
        if (v !== "0" && v !== "1") throw new InvalidArgumentError(`--staleness must be 0 or 1, got "${v}"`);
        return v === "1" ? 1 : 0;
      },
    )
    .option(
      "--local-steps <h>",
      "Local optimizer steps per committed step of the job (sync.every, 1 to 64)",
      intFlag("--local-steps", 1),
    )
    .addOption(
      new Option("--compression <enc>", "Encoding of the job's gradient slices").choices([
        "none",
        "fp16",
        "int8",
      ]),
    )
    .addOption(
      new Option("--balance <how>", "Batch shares per member (job spec balance)").choices([
        "equal",
        "throughput",
      ]),
    )
    .addOption(
      new Option(
        "--model <name>",
        "Model of the job: MNIST's MLP, or a text-transformer on SpamAssassin text",
      )
        .choices([...CHAOS_MODELS])
        .default("mlp"),
    )
    .option("--json", "Print the report as one JSON object on the last line");
  usageErrorsExit2(cmd);
  cmd.action(async (flags: ChaosFlags) => {
    const seed = flags.seed ?? Date.now() % 1_000_000;
    const log = (line: string): void =>
      void (flags.json ? process.stderr : process.stdout).write(`${line}\n`);
    const report = await runChaos({
      seed,
      nodes: flags.nodes,
      durationSec: flags.duration,
      faults: flags.faults,
      epochs: flags.epochs,
      tolerance: flags.tolerance,
      logDir: flags.logDir,
      baselineAccuracy: flags.baselineAccuracy,
      injectBugs: flags.injectBug,
      model: flags.model,
      mode: {
        staleness: flags.staleness ?? 0,
        localSteps: flags.localSteps ?? 1,
        compression: flags.compression ?? "none",
        balance: flags.balance ?? "equal",
      },
      onProgress: log,
    });
    for (const line of summary(report)) log(line);
    if (!report.passed)
      process.stderr.write(`flock chaos FAILED with seed ${report.seed}; replay with:\n  ${report.replay}\n`);
    if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exitCode = report.passed ? 0 : 1;
  });
}

/** The report in lines for people. */
export function summary(r: ChaosReport): string[] {
  const lines = [`faults (seed ${r.seed}):`];
  for (const f of r.faults) {
    lines.push(
      `  ${f.time.toFixed(1).padStart(6)} s  ${f.kind.padEnd(16)} ${f.target.padEnd(16)} recovery ${f.recoverySeconds === null ? "—" : `${f.recoverySeconds.toFixed(2)} s`}${f.detectionSeconds === null ? "" : ` (detected after ${f.detectionSeconds.toFixed(2)} s)`}${f.rejoined === false ? " (did not rejoin in 30 s)" : ""}`,
    );
  }
  lines.push("invariants:");
  for (const [name, v] of Object.entries(r.invariants))
    lines.push(`  ${v.ok ? "ok  " : "FAIL"} ${name}: ${v.detail}`);
  const acc = (x: number | null): string => (x === null ? "—" : x.toFixed(4));
  lines.push(
    `accuracy ${acc(r.accuracy)} (baseline ${acc(r.baselineAccuracy)}, tolerance ±${r.tolerance}); recovery p50 ${r.recoveryP50 ?? "—"} s, max ${r.recoveryMax ?? "—"} s; steps lost ${r.stepsLost ?? "—"} in ${r.restores} restore(s); ${r.wallSeconds.toFixed(1)} s in all`,
  );
  lines.push(
    r.passed ? "PASSED" : `FAILED (seed ${r.seed}): ${r.replay}${r.logDir ? `\nlogs: ${r.logDir}` : ""}`,
  );
  return lines;
}
