/**
 * Input of the training report: everything a finished (or failed) job knows about its run.
 * Plain data, so a job result read back from JSON can be rendered without conversion.
 */

/** Kinds of membership change drawn on the charts and listed in the timeline. */
export type MembershipKind = "join" | "death" | "leave" | "suspect" | "recovered" | "resize" | "failover";

/** One committed training step. */
export interface StepSample {
  step: number;
  epoch: number;
  /** Seconds since the job started. */
  t: number;
  loss: number;
  /** Members in the step's commit set. */
  members: number;
  samplesPerSec: number;
}

/** One evaluation of the parameters on held-out data. */
export interface EvalSample {
  step: number;
  epoch: number;
  /** Seconds since the job started. */
  t: number;
  loss: number;
  /** Fraction in [0, 1]. */
  accuracy: number;
}

/** One membership change as the coordinator saw it. */
export interface MembershipEvent {
  /** Seconds since the job started. */
  t: number;
  step: number;
  kind: MembershipKind;
  node: string;
  detail?: string;
  /** Time from the coordinator's record of the failure to the first step committed without the failed member. */
  recoverySeconds?: number;
  /** Wall-clock ms when the coordinator recorded it. */
  at?: number;
  /** Where the harness caused the failure (the demo's kill): the kill → this record. */
  detectionSeconds?: number;
  /** Where the harness caused the failure: the kill → the next committed step (detection included). */
  killToCommitSeconds?: number;
}

/** The job result, as `flock train --json` prints it. */
export interface TrainingResultSummary {
  status: string;
  epochs: number;
  steps: number;
  accuracy: number;
  loss: number;
  samplesPerEpoch: number[];
  replicasConsistent: boolean;
  membershipChanges: number;
  wallSeconds: number;
}

/** Everything {@link writeTrainingReport} renders. */
export interface TrainingReportInput {
  /** e.g. `"mnist — job j-1a2b"`. */
  title: string;
  /** ISO time. */
  startedAt: string;
  /** Example, workers, epochs, batch, lr, NATS URL or "embedded", ... */
  settings: Record<string, string | number | boolean>;
  backend: string;
  device?: string;
  result: TrainingResultSummary;
  steps: StepSample[];
  evals: EvalSample[];
  membership: MembershipEvent[];
}
