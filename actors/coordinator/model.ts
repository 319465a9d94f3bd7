import type { NodeInfo } from "../../runtime/cluster/types.js";
import type { MembershipEvent } from "../../runtime/cluster/types.js";
import type { JobRecord } from "../../runtime/cluster/jobs.js";
import type { JobEvent, StepSummary } from "../../messages/index.js";
import type { BatchRef, ShardLedger } from "../ledger/ledger.js";
import type { JobSpec } from "../job/spec.js";
import type { EvaluatorCommand } from "../evaluator/protocol.js";
import type { ReducerCommand } from "../reducer/protocol.js";
import type { Prepared, ReducerMap, TrainerCommand } from "../trainer/protocol.js";
import type { CoordinatorCommand, Leased, StepDone } from "./protocol.js";
import type { CheckpointManifest, ManifestPart, ManifestState } from "./manifest.js";
import type { Member, MembershipRecord, PersistedJob } from "./state.js";
import type { DataSource } from "../compute/data-presence.js";
import type { DataCheck } from "./data-checks.js";

/** Default ask deadline of the coordinator's requests. */
export const ASK_MS = 5_000;
/** Committed steps each step event repeats (a follower fills a gap of up to this many lost events). */
export const RECENT_STEPS = 4;
/** Deadline of a trainer's prepare (it may load a backend and a data set first). */
export const PREPARE_MS = 120_000;
/** A commit not applied by every reducer within this is aborted and the step redone. */
export const COMMIT_DEADLINE_MS = 4_000;
/** The job record (for `flock jobs`) is written at most this often. */
export const RECORD_THROTTLE_MS = 500;
/** A failed standby placement is tried again after this. */
export const STANDBY_RETRY_MS = 2_000;
/** Reducer recovery is retried this often, this many times, while nodes die or join. */
export const RECOVERY_RETRY_MS = 500;
export const RECOVERY_RETRIES = 20;
/** While finishing: re-ask the final evaluation this often (none yet: wait for the evaluator). */
export const FINISH_REEVAL_MS = 30_000;
export const FINISH_NO_EVALUATOR_MS = 200;
/**
 * Membership records of the kinds that do not change membership (a straggler left out of a step, a
 * suspect) kept in the persisted list: the first {@link QUIET_RECORDS_HEAD} and the latest
 * {@link QUIET_RECORDS_TAIL}. A permanent straggler adds one a step, and the list is written with
 * every commit: unbounded, the state write would outgrow the KV value limit and fail the job.
 */
export const QUIET_RECORDS_HEAD = 50;
export const QUIET_RECORDS_TAIL = 50;
/**
 * Records of real membership changes kept the same way: the first {@link CHANGE_RECORDS_HEAD} and
 * the latest {@link CHANGE_RECORDS_TAIL}. A node that dies and rejoins forever adds two a cycle; the
 * persisted count of dropped ones keeps the result's `membershipChanges` exact.
 */
export const CHANGE_RECORDS_HEAD = 50;
export const CHANGE_RECORDS_TAIL = 150;
/** Distinct backend names the job records from its members' answers. */
export const MAX_BACKENDS = 16;
/** A step where no trainer had samples is retried after this. */
export const EMPTY_STEP_RETRY_MS = 20;

/** What the machine reads of the world with each event: the time and the nodes alive now. */
export interface World {
  now: number;
  alive: readonly NodeInfo[];
}

/** The machine's fixed inputs. */
export interface MachineConfig {
  job: string;
  spec: JobSpec;
  /** The node this coordinator runs on. */
  nodeId: string;
}

/** The job's phase; each carries only its own data. */
export type Phase =
  | { name: "campaigning" }
  | {
      name: "placing";
      startedAt: number;
      stage: "waiting" | "members" | "reducers";
      members?: Member[];
      prepared?: Prepared[];
    }
  /** `ahead`: started while the step before it committed (bounded staleness). */
  | { name: "stepping"; startedAt: number; done: Map<string, StepDone>; ahead?: boolean }
  | {
      name: "committing";
      stepStartedAt: number;
      startedAt: number;
      done: Map<string, StepDone>;
      contributors: string[];
      batches: BatchRef[];
      total: number;
      lossSum: number;
      applied: Set<number>;
      /** The state write the commit waits for (reducers run at most one step ahead of it). */
      awaitSeq: number;
      sent: boolean;
      /** The next step, started before this one is applied (bounded staleness), and its answers so far. */
      ahead?: { startedAt: number; done: Map<string, StepDone> };
    }
  | {
      name: "recovering";
      reason: string;
      releaseOrphans: boolean;
      step: number;
      /** Nodes alive when the recovery began (its abort and rebuild plan use this view). */
      alive: string[];
    }
  | { name: "paused" }
  | { name: "finishing" }
  | { name: "done" };

export type PhaseName = Phase["name"];

/** Messages the coordinator sends. */
export type Outbound = TrainerCommand | ReducerCommand | EvaluatorCommand;

/** Reducers to create while placing or recovering: reducer r, on `node`, named `name`. */
export interface ReducerSpawn {
  r: number;
  node: string;
  name: string;
}

/** What a reducer recovery started from, echoed back with its abort's outcome. */
export interface RecoveryContext {
  reason: string;
  releaseOrphans: boolean;
  step: number;
  /** Nodes alive when the recovery began. */
  alive: string[];
}

/** Who waits for a generic spawn. */
export type SpawnPurpose = { what: "evaluator" } | { what: "standby"; token: number };

/** Work the shell performs; results re-enter as events carrying the same `gen`. */
export type Command =
  | { kind: "tell"; to: string; msg: Outbound }
  | { kind: "publish"; event: JobEvent }
  | { kind: "log"; level: "info" | "warn" | "error"; obj: Record<string, unknown>; msg: string }
  | { kind: "reply"; msg: Leased }
  | { kind: "timer"; id: TimerId; ms: number }
  | { kind: "writeRecord"; record: JobRecord }
  | { kind: "persist"; gen: number; seq: number; job: PersistedJob }
  | { kind: "claim"; gen: number; term: number }
  | { kind: "spawn"; gen: number; purpose: SpawnPurpose; node: string; actorKind: string; name: string }
  | { kind: "placeMembers"; gen: number; term: number; nodes: string[]; incs: Record<string, string> }
  /** Ask `node` (incarnation `inc`) whether it holds the job's `file://` data (`data-checks.ts`). */
  | { kind: "checkData"; gen: number; node: string; inc: string; sources: DataSource[] }
  | {
      kind: "startReducers";
      gen: number;
      term: number;
      spawns: ReducerSpawn[];
      bounds: number[];
      /** The trainer whose initial parameters seed the reducers. */
      source: string;
      trainers: string[];
    }
  | {
      kind: "admitJoiner";
      gen: number;
      term: number;
      node: string;
      inc: string;
      version: number;
      reducers: ReducerMap;
      /** Restores done when it was issued: a joiner prepared before a restore holds another timeline. */
      restores: number;
    }
  | {
      kind: "abortReducers";
      gen: number;
      term: number;
      step: number;
      /** Reducer addresses to ask; null: known lost (its node is not alive). */
      targets: Array<string | null>;
      /** Set when the abort is the first stage of a reducer recovery. */
      recovery?: RecoveryContext;
    }
  | {
      kind: "rebuildReducers";
      gen: number;
      term: number;
      reducerGen: number;
      spawns: ReducerSpawn[];
      addresses: string[];
      bounds: number[];
      trainers: string[];
      version: number;
      checkpointStep: number | null;
      releaseNodes: string[];
    }
  | { kind: "stopActors"; addresses: string[] }
  /** Write a checkpoint's manifest (after all its parts); `restores` as in admitJoiner. */
  | { kind: "writeManifest"; gen: number; restores: number; manifest: CheckpointManifest }
  /** Delete checkpoint blobs retention no longer keeps (failures are logged, retried at the next one). */
  | { kind: "pruneCheckpoints"; keep: number[] }
  /** Read the newest complete checkpoint of a step ≤ `maxStep` whose manifest and parts check out. */
  | { kind: "readCheckpoint"; gen: number; token: number; maxStep: number }
  /** Stop `stop`, then spawn every reducer anew and load each from its part of the checkpoint of `step`. */
  | {
      kind: "restoreReducers";
      gen: number;
      term: number;
      token: number;
      step: number;
      spawns: ReducerSpawn[];
      bounds: number[];
      parts: ManifestPart[];
      stop: string[];
    }
  | { kind: "close"; gen: number; job?: PersistedJob; record?: JobRecord; stop: string[] }
  | { kind: "stop" };

/** Timers the machine asks for; on firing it checks they still apply. */
export type TimerId = "empty-step" | "recovery-retry" | "finish-check";

/** Everything that happens to the coordinator. */
export type Event =
  | { type: "acquired"; term: number }
  | { type: "leaseLost"; reason: string }
  | { type: "claimed"; gen: number; saved: PersistedJob | undefined }
  | { type: "claimFailed"; gen: number; error: string }
  | { type: "tick" }
  | { type: "timer"; id: TimerId }
  | { type: "membership"; event: MembershipEvent }
  /** `from`: the sender's address (undefined: a local tell that named none, i.e. this node). */
  | { type: "message"; msg: Exclude<CoordinatorCommand, { type: "coord.status" }>; from?: string }
  | { type: "persisted"; gen: number; seq: number }
  | { type: "persistFailed"; gen: number; seq: number; fenced: boolean; error: string }
  | { type: "spawned"; gen: number; purpose: SpawnPurpose; address: string }
  | { type: "spawnFailed"; gen: number; purpose: SpawnPurpose; error: string }
  | { type: "membersPlaced"; gen: number; members: Member[]; prepared: Prepared[] }
  | { type: "reducersReady"; gen: number; reducers: ReducerMap }
  | { type: "placementFailed"; gen: number; error: string }
  /** A node's data check: what it lacks ([] when nothing), or that it did not answer. */
  | { type: "dataChecked"; gen: number; node: string; inc: string; problems: string[] }
  | {
      type: "joinerPrepared";
      gen: number;
      node: string;
      member: Member;
      prepared: Prepared;
      restores: number;
    }
  | { type: "joinerFailed"; gen: number; node: string; error: string; restores: number }
  | { type: "reducersAborted"; gen: number; ok: boolean[]; recovery?: RecoveryContext }
  | { type: "reducersRebuilt"; gen: number; addresses: string[]; replaced: number; reducerGen: number }
  /** `noParams`: no trainer tried could give the parameters (a checkpoint may have them). */
  | { type: "recoveryFailed"; gen: number; error: string; noParams?: boolean; timedOut?: boolean }
  | { type: "manifestWritten"; gen: number; restores: number; step: number }
  | { type: "manifestFailed"; gen: number; restores: number; step: number; error: string }
  /** `refused`: why newer checkpoints were passed over (a manifest or part that failed its check). */
  | { type: "checkpointRead"; gen: number; token: number; manifest: CheckpointManifest; refused: string[] }
  | { type: "checkpointUnreadable"; gen: number; token: number; error: string }
  | { type: "reducersRestored"; gen: number; token: number; addresses: string[] }
  | { type: "restoreFailed"; gen: number; token: number; error: string }
  | { type: "closed"; gen: number }
  | { type: "closeFailed"; gen: number; error: string };

/** A standby coordinator placed (or being placed) on another node. */
export interface Standby {
  node: string;
  inc: string;
  token: number;
  address?: string;
}

/** The machine's whole state. */
export interface CoordState {
  phase: Phase;
  term: number;
  /** Bumped when the lease is lost: results of earlier work are dropped. */
  generation: number;
  p?: PersistedJob;
  ledger?: ShardLedger;
  attempt: number;
  hashes: Map<number, Map<string, string>>;
  joining: Set<string>;
  readyJoiners: Member[];
  pendingRecovery: Array<{ record: MembershipRecord; at: number }>;
  evaluator?: string;
  finalEval?: { loss: number; accuracy: number };
  ewmaStepMs: number;
  lastCommitAt: number;
  lastRecordWrite: number;
  /** The latest state write issued, and how it went. */
  persist: { seq: number; status: "pending" | "ok" | "failed"; error?: string };
  /** Step events to announce once their write is durable, by write. */
  announce: Map<number, JobEvent>;
  standby?: Standby;
  standbyToken: number;
  standbyRetryAt: number;
  recentSteps: StepSummary[];
  recoveryAttempts: number;
  /** Rebuilds in a row that found no parameters with every trainer refusing (none timed out). */
  refusedRebuilds: number;
  /** Checkpoints asked for and not complete yet, by step: the state at the step and the parts written. */
  checkpointAcks: Map<number, PendingCheckpoint>;
  /** Restores from a checkpoint done by this coordinator (outcomes of work from before one are dropped). */
  restores: number;
  /** The restore in flight: its token, and the manifest once read. */
  restoring?: { token: number; manifest?: CheckpointManifest };
  restoreToken: number;
  /** Each live node's latest data check, by node (only for jobs that read `file://` data). */
  dataChecks: Map<string, DataCheck>;
  /** Messages ignored because they did not fit the state (stale or from another term). */
  ignored: number;
}

/** A checkpoint asked for at its commit: the job state then, and the parts acknowledged so far. */
export interface PendingCheckpoint {
  state: ManifestState;
  parts: Map<number, { bytes: number; sha256: string }>;
}

/** What the handlers in the concern files use of the machine. */
export interface Core {
  readonly cfg: MachineConfig;
  readonly s: CoordState;
  readonly w: World;
  emit(command: Command): void;
  log(level: "info" | "warn" | "error", obj: Record<string, unknown>, msg: string): void;
  publish(event: JobEvent): void;
  fail(error: string): void;
}

/** The running job's state; only called where a phase guarantees it exists. */
export function job(m: Core): { p: PersistedJob; ledger: ShardLedger } {
  const { p, ledger } = m.s;
  if (!p || !ledger) throw new Error(`coordinator: no job state in phase ${m.s.phase.name}`);
  return { p, ledger };
}

/** Seconds since the job started. */
export function elapsed(m: Core): number {
  return m.s.p ? (m.w.now - m.s.p.startedAt) / 1000 : 0;
}

/** Phases in which this coordinator holds the lease and runs the job. */
export function acting(phase: Phase): boolean {
  return phase.name !== "campaigning" && phase.name !== "done";
}

/** The node part of an actor address. */
export function nodeOf(address: string): string {
  return address.slice(0, address.indexOf("/"));
}
