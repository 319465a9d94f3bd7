import { memberMismatch, reducerMismatch } from "../senders.js";
import type { JobEvent } from "../../messages/index.js";
import {
  type Command,
  type CoordState,
  type Core,
  type Event,
  type MachineConfig,
  type PhaseName,
  type World,
  acting,
} from "./model.js";
import {
  admitCandidates,
  onJoinerFailed,
  onJoinerPrepared,
  onMembership,
  reconcileMembers,
} from "./elastic.js";
import { onMembersPlaced, onReducersReady, tryPlace } from "./placement.js";
import { onDataChecked, requestDataChecks } from "./data-checks.js";
import { failJob, onEvaluated, onFinishCheck, onLeaseRequest } from "./progress.js";
import { onCheckpointed, onManifestFailed, onManifestWritten } from "./checkpoints.js";
import { onCheckpointRead, onReducersRestored, restoreFailed } from "./restore.js";
import { onPersistFailed, onPersisted, writeRecordThrottled } from "./records.js";
import { onReducersAborted, onReducersRebuilt, onRecoveryFailed, onRecoveryRetry } from "./recovery.js";
import { onApplied, onDone, onMissing, startStep, stepDeadlines } from "./step.js";
import {
  ensureStandby,
  onAcquired,
  onClaimFailed,
  onClaimed,
  onLeaseLost,
  onSpawnFailed,
  onSpawned,
} from "./takeover.js";

/** A fresh machine state: campaigning, nothing known yet. */
export function initialState(): CoordState {
  return {
    phase: { name: "campaigning" },
    term: 0,
    generation: 0,
    attempt: 0,
    hashes: new Map(),
    joining: new Set(),
    readyJoiners: [],
    pendingRecovery: [],
    ewmaStepMs: 0,
    lastCommitAt: 0,
    lastRecordWrite: 0,
    persist: { seq: 0, status: "ok" },
    announce: new Map(),
    standbyToken: 0,
    standbyRetryAt: 0,
    recentSteps: [],
    recoveryAttempts: 0,
    refusedRebuilds: 0,
    checkpointAcks: new Map(),
    restores: 0,
    restoreToken: 0,
    dataChecks: new Map(),
    ignored: 0,
  };
}

/** Events that report the outcome of work started under some generation. */
type Outcome = Extract<Event, { gen: number }>;

/**
 * The job coordinator as a pure state machine: events in (messages, lease and membership changes,
 * timer fires, outcomes of the shell's work), the time and the live nodes in, commands out. It
 * never performs I/O; the shell (`shell.ts`) does, and feeds each outcome back as an event. It is
 * deterministic given its events and their {@link World}. Outcomes of work started under an
 * earlier generation (before a lost lease) are dropped, except that a durable step is announced.
 */
export class CoordinatorMachine implements Core {
  readonly s: CoordState = initialState();
  private out: Command[] = [];
  private world: World = { now: 0, alive: [] };

  constructor(readonly cfg: MachineConfig) {}

  get w(): World {
    return this.world;
  }

  /** Handles one event at `world.now`; returns the commands to perform, in order. */
  step(event: Event, world: World): Command[] {
    this.world = world;
    this.out = [];
    this.dispatch(event);
    const out = this.out;
    this.out = [];
    return out;
  }

  /** The phase's name (for the status reply and the job record). */
  get phase(): PhaseName {
    return this.s.phase.name;
  }

  emit(command: Command): void {
    this.out.push(command);
  }

  log(level: "info" | "warn" | "error", obj: Record<string, unknown>, msg: string): void {
    this.emit({ kind: "log", level, obj: { job: this.cfg.job, ...obj }, msg });
  }

  publish(event: JobEvent): void {
    this.emit({ kind: "publish", event });
  }

  fail(error: string): void {
    failJob(this, error);
  }

  private dispatch(e: Event): void {
    if ("gen" in e) return this.outcome(e);
    switch (e.type) {
      case "acquired":
        return onAcquired(this, e.term);
      case "leaseLost":
        return onLeaseLost(this, e.reason);
      case "tick":
        return this.tick();
      case "timer":
        if (e.id === "empty-step") return void (this.s.phase.name === "stepping" && startStep(this));
        if (e.id === "recovery-retry") return onRecoveryRetry(this);
        return onFinishCheck(this);
      case "membership":
        return onMembership(this, e.event);
      case "message": {
        const refused = this.foreignSender(e.msg, e.from);
        if (refused === undefined) return this.message(e.msg);
        this.s.ignored++;
        return this.log(
          "warn",
          { type: e.msg.type, from: e.from, reason: refused },
          "coordinator: ignored a message not from its subject",
        );
      }
    }
  }

  /**
   * Why a message speaks for someone other than its sender (see senders.ts): a loader lease or a
   * step report names its member, an acknowledgement its reducer.
   */
  private foreignSender(
    msg: Extract<Event, { type: "message" }>["msg"],
    from: string | undefined,
  ): string | undefined {
    switch (msg.type) {
      case "coord.lease":
      case "coord.done":
        return memberMismatch(msg.member, from, this.cfg.nodeId);
      case "coord.cancel":
        return memberMismatch(msg.by, from, this.cfg.nodeId);
      case "coord.applied":
      case "coord.missing":
      case "coord.checkpointed":
        return this.s.p
          ? reducerMismatch(msg.r, from, this.s.p.reducers.addresses, this.cfg.nodeId)
          : undefined;
      default:
        return undefined;
    }
  }

  private message(msg: Extract<Event, { type: "message" }>["msg"]): void {
    switch (msg.type) {
      case "coord.lease":
        return onLeaseRequest(this, msg);
      case "coord.done":
        return onDone(this, msg);
      case "coord.applied":
        return onApplied(this, msg);
      case "coord.missing":
        return onMissing(this, msg);
      case "coord.evaluated":
        return onEvaluated(this, msg);
      case "coord.checkpointed":
        return onCheckpointed(this, msg);
      case "coord.cancel":
        // Only the lease holder ends the job; a standby (campaigning) counts it and waits.
        return this.phase === "campaigning" ? void this.s.ignored++ : this.fail(`cancelled by ${msg.by}`);
      default:
        // Input from the wire is hostile: a message this machine does not handle is counted, never thrown on.
        this.s.ignored++;
    }
  }

  private tick(): void {
    ensureStandby(this);
    if (acting(this.s.phase)) requestDataChecks(this);
    tryPlace(this);
    reconcileMembers(this);
    stepDeadlines(this);
    admitCandidates(this);
    if (this.s.p && this.phase !== "campaigning") writeRecordThrottled(this);
  }

  private outcome(e: Outcome): void {
    // Persist outcomes handle their own generation (a durable step is announced whatever happened since).
    if (e.type === "persisted") return onPersisted(this, e.gen, e.seq);
    if (e.type === "persistFailed") return onPersistFailed(this, e.gen, e.seq, e.fenced, e.error);
    if (e.gen !== this.s.generation) return void this.s.ignored++;
    if (this.phase === "done" && e.type !== "closed" && e.type !== "closeFailed") return;
    switch (e.type) {
      case "claimed":
        return onClaimed(this, e.saved);
      case "claimFailed":
        return onClaimFailed(this, e.error);
      case "spawned":
        return onSpawned(this, e.purpose, e.address);
      case "spawnFailed":
        return onSpawnFailed(this, e.purpose, e.error);
      case "membersPlaced":
        return onMembersPlaced(this, e.members, e.prepared);
      case "reducersReady":
        return onReducersReady(this, e.reducers);
      case "placementFailed":
        return this.fail(`placement failed: ${e.error}`);
      case "dataChecked":
        return onDataChecked(this, e.node, e.inc, e.problems);
      case "joinerPrepared":
        return onJoinerPrepared(this, e.node, e.member, e.prepared, e.restores);
      case "joinerFailed":
        return onJoinerFailed(this, e.node, e.error, e.restores);
      case "reducersAborted":
        return onReducersAborted(this, e.ok, e.recovery);
      case "reducersRebuilt":
        return onReducersRebuilt(this, e.addresses, e.replaced, e.reducerGen);
      case "recoveryFailed":
        return onRecoveryFailed(this, e.error, e.noParams, e.timedOut);
      case "manifestWritten":
        return onManifestWritten(this, e.restores, e.step);
      case "manifestFailed":
        return onManifestFailed(this, e.step, e.error);
      case "checkpointRead":
        return onCheckpointRead(this, e.token, e.manifest, e.refused);
      case "checkpointUnreadable":
      case "restoreFailed":
        return restoreFailed(this, e.token, e.error);
      case "reducersRestored":
        return onReducersRestored(this, e.token, e.addresses);
      case "closed":
        return this.emit({ kind: "stop" });
      case "closeFailed":
        return this.log("error", { err: e.error }, "coordinator: closing the job failed");
    }
  }
}
