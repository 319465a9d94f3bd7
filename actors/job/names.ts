/** Actor names and topics of a job, in one place so every kind agrees. */
export const jobNames = {
  trainer: (job: string) => `job-${job}.trainer`,
  loader: (job: string) => `job-${job}.loader`,
  reducer: (job: string, r: number) => `job-${job}.reducer-${r}`,
  evaluator: (job: string, term: number) => `job-${job}.evaluator-${term}`,
  coordinator: (job: string) => `job-${job}.coordinator`,
  paramsTopic: (job: string) => `job.${job}.params`,
  eventsTopic: (job: string) => `job.${job}.events`,
  leaseKey: (job: string) => `job.${job}`,
  checkpoint: (job: string, step: number, r: number) => `ckpt.${job}.${step}.r${r}`,
  /** The manifest of a checkpoint: written after all its parts, so its presence means complete. */
  checkpointManifest: (job: string, step: number) => `ckpt.${job}.${step}.manifest`,
  /** The prefix of every checkpoint blob of a job (job ids hold no dots, so no other job's). */
  checkpointPrefix: (job: string) => `ckpt.${job}.`,
};

/** Seed of an epoch's sample order, derived from the job seed. */
export function epochSeed(seed: number, epoch: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(epoch + 1, 0xc2b2ae35)) >>> 0;
}

/** KV bucket of the coordinators' persisted job state (key: job id). */
export const JOB_STATE_BUCKET = "jobstate";
/** Object-store bucket of reducer checkpoints (names: {@link jobNames.checkpoint}). */
export const CHECKPOINTS_BUCKET = "checkpoints";
