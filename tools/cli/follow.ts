import { stepsToCount, type JobEvent } from "../../messages/index.js";
import type { TrainResult } from "../../actors/api.js";
import type {
  EvalSample,
  MembershipEvent,
  Progress,
  StepSample,
  TrainingReportInput,
} from "../report/index.js";
import type { JobSpec } from "../../actors/job/spec.js";

/** Collects a job's events into the series a training report draws. */
export class JobTimeline {
  readonly steps: StepSample[] = [];
  readonly evals: EvalSample[] = [];
  readonly membership: MembershipEvent[] = [];
  readonly startedAt = new Date();
  lastAccuracy: number | undefined;
  private readonly seen = new Set<number>();

  /** Records one event. */
  add(e: JobEvent): void {
    switch (e.type) {
      case "job.step":
        for (const s of stepsToCount(e, this.seen)) {
          this.steps.push({
            step: s.step,
            epoch: s.epoch,
            t: s.t,
            loss: s.loss,
            members: s.members,
            // A step filled in from a later event's `earlier` has no rate of its own.
            samplesPerSec: s.step === e.step ? e.samplesPerSec : (this.steps.at(-1)?.samplesPerSec ?? 0),
          });
        }
        break;
      case "job.eval":
        this.evals.push({ step: e.step, epoch: e.epoch, t: e.t, loss: e.loss, accuracy: e.accuracy });
        this.lastAccuracy = e.accuracy;
        break;
      case "job.membership":
        if (e.event.kind !== "straggler")
          this.membership.push({
            t: e.t,
            step: e.step,
            kind: e.event.kind,
            node: e.event.node,
            detail: e.event.detail,
            recoverySeconds: e.event.recoverySeconds,
          });
        break;
      default:
        break;
    }
  }

  /** An event handler that records each event and shows steps and membership changes on `progress`. */
  follow(progress: Progress, then?: (e: JobEvent) => void): (e: JobEvent) => void {
    return (e) => {
      this.add(e);
      if (e.type === "job.step") {
        progress.update({
          step: e.step,
          epoch: Math.min(e.epoch + 1, e.epochs),
          epochs: e.epochs,
          loss: e.loss,
          accuracy: this.lastAccuracy,
          members: e.members,
          samplesPerSec: e.samplesPerSec,
        });
      } else if (e.type === "job.membership") progress.event(describeMembership(e));
      then?.(e);
    };
  }

  /** The report input for a finished job. */
  reportInput(
    spec: JobSpec,
    result: TrainResult,
    settings: Record<string, string | number | boolean>,
  ): TrainingReportInput {
    // The coordinator's own record is authoritative for membership (events may be missed by a late follower).
    const recorded: MembershipEvent[] = result.membership.flatMap((m) =>
      m.kind === "straggler" ? [] : [{ ...m, kind: m.kind }],
    );
    return {
      title: `${spec.name} — job ${result.job}`,
      startedAt: this.startedAt.toISOString(),
      settings,
      backend: result.backend,
      result: {
        status: result.status,
        epochs: result.epochs,
        steps: result.steps,
        accuracy: result.accuracy,
        loss: result.loss,
        samplesPerEpoch: result.samplesPerEpoch,
        replicasConsistent: result.replicasConsistent,
        membershipChanges: result.membershipChanges,
        wallSeconds: result.wallSeconds,
      },
      steps: this.steps,
      evals: result.evals,
      membership: recorded,
    };
  }
}

/** One line describing a membership event, for progress output. */
export function describeMembership(e: Extract<JobEvent, { type: "job.membership" }>): string {
  const rec =
    e.event.recoverySeconds !== undefined ? ` (recovered in ${e.event.recoverySeconds.toFixed(2)} s)` : "";
  return `[${e.t.toFixed(1)}s] step ${e.step}: ${e.event.kind} ${e.event.node}${e.event.detail ? ` — ${e.event.detail}` : ""}${rec}`;
}
