import type { LedgerState } from "../ledger/ledger.js";
import type { ShardLedger } from "../ledger/ledger.js";
import type { JobSpec } from "../job/spec.js";
import type { ReducerMap } from "../trainer/protocol.js";
import type { StepDone } from "./protocol.js";
import type { BalanceEntry } from "./balance.js";
import type { JobEvent, TrainResult } from "../../messages/index.js";

/** A trainer taking part in the job, with its data loader, both on `node`. */
export interface Member {
  node: string;
  trainer: string;
  loader: string;
  /**
   * The node's incarnation when its trainer was placed: the trainer dies with it, so a member whose
   * node now runs another incarnation is gone even if nobody saw it die (absent in older records).
   */
  inc?: string;
}

/** One membership change of the job, for the result and the report. */
export interface MembershipRecord {
  kind: "join" | "death" | "leave" | "suspect" | "recovered" | "resize" | "failover" | "straggler";
  node: string;
  step: number;
  t: number;
  at: number;
  detail?: string;
  recoverySeconds?: number;
}

/** What the coordinator persists in KV after every committed step, so a standby can take over. */
export interface PersistedJob {
  job: string;
  spec: JobSpec;
  state: "running" | "finished" | "failed";
  term: number;
  /** Last committed step (= parameter version). */
  step: number;
  epoch: number;
  members: Member[];
  reducers: ReducerMap;
  reducerGen: number;
  paramCount: number;
  ledger: LedgerState;
  /** The newest complete checkpoint (its manifest written), or null. */
  checkpointStep: number | null;
  /** Steps of the complete checkpoints retained, ascending, at most `keepCheckpoints` (absent in older records). */
  checkpoints?: number[];
  /** Committed steps redone after restores from a checkpoint (absent: none). */
  stepsLost?: number;
  startedAt: number;
  backends: string[];
  evals: Array<{ step: number; epoch: number; t: number; loss: number; accuracy: number }>;
  membership: MembershipRecord[];
  /** Records dropped from `membership` by its bound, by class (absent in older records: none). */
  membershipDropped?: { quiet: number; changes: number };
  hashChecks: { checked: number; consistent: boolean; mismatches: string[] };
  /** Every reducer's applied set compared with the commit set. */
  commitAudit: { checked: number; mismatches: string[] };
  lastLoss: number;
  /** The announcement of the last committed step, re-published (as a replay) by a successor. */
  lastStepEvent?: JobEvent;
  /**
   * With `balance: "throughput"`: each member's smoothed samples/s and last share told, one entry
   * per member (absent in older records and with equal shares), so a successor keeps the shares.
   */
  balance?: BalanceEntry[];
  /** Set when the job finished. */
  result?: TrainResult;
  /** Why the job failed, when it did. */
  error?: string;
  /** Wall-clock ms the job finished or failed (absent while it runs, and in older records). */
  endedAt?: number;
}

/** The job result of the design's contract, plus evidence the harness and reports use. */
export function buildResult(
  p: PersistedJob,
  ledger: ShardLedger,
  status: string,
  final: { loss: number; accuracy: number } | undefined,
  now: number,
): TrainResult {
  const recoveries = p.membership.flatMap((m) =>
    m.recoverySeconds === undefined ? [] : [m.recoverySeconds],
  );
  const scored = final ?? p.evals.at(-1);
  return {
    // Task mlm: an evaluation's loss is the mean masked cross-entropy, so its exp is the perplexity.
    ...(p.spec.task === "mlm"
      ? { task: "mlm", maskedAccuracy: scored?.accuracy ?? 0, perplexity: Math.exp(scored?.loss ?? NaN) }
      : {}),
    status,
    job: p.job,
    name: p.spec.name,
    epochs: ledger.samplesPerEpoch().length,
    steps: p.step,
    accuracy: final?.accuracy ?? p.evals.at(-1)?.accuracy ?? 0,
    loss: final?.loss ?? p.evals.at(-1)?.loss ?? p.lastLoss,
    backend: p.backends.length > 0 ? p.backends.join("+") : "unknown",
    samplesPerEpoch: ledger.samplesPerEpoch(),
    replicasConsistent: p.hashChecks.consistent && p.hashChecks.checked > 0,
    hashChecks: p.hashChecks.checked,
    hashMismatches: p.hashChecks.mismatches,
    commitAudit: p.commitAudit,
    membershipChanges:
      p.membership.filter((m) => m.kind !== "straggler" && m.kind !== "suspect").length +
      (p.membershipDropped?.changes ?? 0),
    ...(p.membershipDropped ? { membershipRecordsDropped: p.membershipDropped } : {}),
    wallSeconds: (now - p.startedAt) / 1000,
    members: p.members.map((m) => m.node),
    recoverySeconds: recoveries,
    ledgerAudit: ledger.audit(),
    membership: p.membership,
    evals: p.evals,
    stepsLost: p.stepsLost ?? 0,
  };
}

export type { StepDone };
