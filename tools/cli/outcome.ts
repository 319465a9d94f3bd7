import type { TrainResult } from "../../actors/api.js";
import type { Progress } from "../report/index.js";

/**
 * The lines `flock train` ends with (and `flock job wait`, `flock train --resume`): one with the
 * status and the numbers, one with the evidence, and the report's path when one was written.
 */
export function resultLines(result: TrainResult, report?: string): string[] {
  return [
    `status ${result.status}: accuracy ${result.accuracy.toFixed(4)}, loss ${result.loss.toFixed(4)}, ${result.steps} steps, ${result.epochs} epochs in ${result.wallSeconds.toFixed(1)} s`,
    ...(result.task === "mlm"
      ? [
          `masked language model: masked-token accuracy ${(result.maskedAccuracy ?? NaN).toFixed(4)}, perplexity ${(result.perplexity ?? NaN).toFixed(2)}`,
        ]
      : []),
    `backend ${result.backend}; replicas consistent: ${result.replicasConsistent}; membership changes: ${result.membershipChanges}; samples per epoch: ${result.samplesPerEpoch.join(", ")}`,
    ...(report ? [`report: ${report}`] : []),
  ];
}

/** Prints a job's result: the summary under the progress, and with `json` the result as the last stdout line. */
export function printResult(progress: Progress, result: TrainResult, json: boolean, report?: string): void {
  progress.done(resultLines(result, report));
  if (json) process.stdout.write(JSON.stringify({ ...result, report }) + "\n");
}

/** Exit status of a job's result: 0 when it completed, 1 otherwise (a failed job is an error, also 1). */
export function resultExitCode(result: TrainResult): number {
  return result.status === "completed" ? 0 : 1;
}
