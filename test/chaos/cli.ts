/**
 * Runs `flock chaos --json` as a child process for the chaos tests.
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { ChaosReport } from "../../tools/chaos/run.js";
import { registerCleanup, spawnChild, type HasAfter } from "../helpers/index.js";

const FLOCK = fileURLToPath(new URL("../../bin/flock.js", import.meta.url));

/** What one `flock chaos` run gave: exit code, the JSON report of its last line, all its output. */
export interface ChaosCliRun {
  code: number | null;
  report: ChaosReport;
  output: string;
}

/** Runs `flock chaos <args> --json` (stopped in `t.after` if still running) and parses its report. */
export async function runChaosCli(
  t: HasAfter,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ChaosCliRun> {
  const child = registerCleanup(
    t,
    spawnChild(process.execPath, [FLOCK, "chaos", ...args, "--json"], {
      env,
      name: "flock chaos",
      stopGraceMs: 15_000,
    }),
  );
  const exit = await child.exited;
  const output = child.output();
  const last = output.trimEnd().split("\n").at(-1) ?? "";
  try {
    return { code: exit.code, report: JSON.parse(last) as ChaosReport, output };
  } catch {
    throw new Error(
      `flock chaos printed no JSON report (exit ${exit.code ?? exit.signal}):\n${output.slice(-6000)}`,
    );
  }
}

/** Asserts a run kept every invariant (naming the failed ones, the replay and the output's tail) and exited 0. */
export function assertChaosPassed({ code, report, output }: ChaosCliRun): void {
  const failed = Object.entries(report.invariants).filter(([, v]) => !v.ok);
  assert.deepEqual(
    failed,
    [],
    `invariants failed (seed ${report.seed}; replay: ${report.replay}):\n${output.slice(-8000)}`,
  );
  assert.equal(report.passed, true);
  assert.equal(code, 0);
}
