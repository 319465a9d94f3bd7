/**
 * The training actors' duration histograms (seconds) and throughput counter, named once so that the dashboards in
 * `examples/` and the tests read the same names the actors record.
 * @module
 */

/** A trainer's part of one step: its batch fetched, gradients computed and sent to the reducers. */
export const STEP_SECONDS_METRIC = "flock_trainer_step_seconds";
/** Help text of {@link STEP_SECONDS_METRIC}. */
export const STEP_SECONDS_HELP =
  "Time a trainer took for its part of a step: batch, gradients, sends (seconds)";

/** Samples a trainer computed gradients on (its `rate()` is the node's training throughput). */
export const SAMPLES_METRIC = "flock_trainer_samples_total";
/** Help text of {@link SAMPLES_METRIC}. */
export const SAMPLES_HELP = "Samples a trainer computed gradients on";

/** A reducer's commit of one step: sum of the commit set, optimizer on its slice, publish. */
export const COMMIT_SECONDS_METRIC = "flock_reducer_commit_seconds";
/** Help text of {@link COMMIT_SECONDS_METRIC}. */
export const COMMIT_SECONDS_HELP = "Time a reducer took to commit a step: sum, optimizer, publish (seconds)";

/**
 * A coordinator's recovery from a loss (a death, a leave, a takeover), from when it recorded the loss
 * to the next committed step, by kind. The time from the fault itself to its detection is not in it:
 * only whoever caused the fault knows when it began (the demo, chaos and bench report both).
 */
export const RECOVERY_SECONDS_METRIC = "flock_job_recovery_seconds";
/** Help text of {@link RECOVERY_SECONDS_METRIC}. */
export const RECOVERY_SECONDS_HELP =
  "Time from a recorded member loss or takeover to the next committed step, by kind (seconds)";
