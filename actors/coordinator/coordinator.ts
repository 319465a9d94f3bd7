import { Packr } from "msgpackr";
import {
  ActorExistsError,
  type ActorContext,
  type ActorRef,
  type Message,
} from "../../runtime/actor/index.js";
import type { MembershipEvent } from "../../runtime/cluster/types.js";
import { stepSummary, type JobEvent, type StepSummary } from "../../messages/index.js";
import type { BatchRef } from "../ledger/ledger.js";
import { ShardLedger } from "../ledger/ledger.js";
import { jobNames } from "../job/names.js";
import type { JobSpec } from "../job/spec.js";
import type { Prepared, ParamsCopy, ReducerMap } from "../trainer/protocol.js";
import type { CoordinatorCommand, StepDone } from "./protocol.js";
import type { CoordinatorHost } from "./host.js";
import { FencedRecord, RecordFencedError } from "./fenced-record.js";
import { buildResult, type Member, type MembershipRecord, type PersistedJob } from "./state.js";

const packr = new Packr({ useRecords: false, moreTypes: true });
const ASK_MS = 5_000;
/** Committed steps each step event repeats (a follower fills a gap of up to this many lost events). */
const RECENT_STEPS = 4;
const PREPARE_MS = 120_000;
/** A commit not applied by every reducer within this is aborted and the step redone. */
const COMMIT_DEADLINE_MS = 4_000;

type Phase =
  | "campaigning"
  | "placing"
  | "stepping"
  | "committing"
  | "recovering"
  | "paused"
  | "finishing"
  | "done"
  | "fenced";

/** Phases in which this coordinator holds the lease and runs the job. */
const ACTING: ReadonlySet<Phase> = new Set([
  "placing",
  "stepping",
  "committing",
  "recovering",
  "paused",
  "finishing",
]);

/** A local-only message that runs a continuation inside the actor (async results re-enter serially). */
export interface Continue {
  type: "coord.continue";
  run: () => void;
}

/** Messages the coordinator actor handles. */
export type CoordinatorMsg =
  | CoordinatorCommand
  | Continue
  | { type: "coord.tick" }
  | { type: "coord.membership"; event: MembershipEvent };

/**
 * The job coordinator: owns the membership epoch, the member set, the step number and the shard
 * ledger; places loaders, trainers, reducers and the evaluator; drives each step (start → done →
 * commit → applied); resizes at step boundaries; persists its state in KV so that a standby,
 * campaigning for the same lease, can take over. Only the lease holder acts: every command it
 * sends carries its term (the lease revision) and the other actors ignore older terms.
 */
export class Coordinator {
  private phase: Phase = "campaigning";
  private term = 0;
  private p!: PersistedJob;
  private ledger!: ShardLedger;
  private ctx!: ActorContext<CoordinatorMsg>;
  private attempt = 0;
  private stepStartedAt = 0;
  private commitStartedAt = 0;
  private done = new Map<string, StepDone>();
  private applied = new Set<number>();
  private contributors: string[] = [];
  private batches: BatchRef[] = [];
  private hashes = new Map<number, Map<string, string>>();
  private joining = new Set<string>();
  private readyJoiners: Member[] = [];
  private pendingRecovery: Array<{ record: MembershipRecord; at: number }> = [];
  private evaluator?: string;
  private finalEval?: { loss: number; accuracy: number };
  private ewmaStepMs = 0;
  private lastCommitAt = 0;
  private stopCampaign?: () => void;
  private lastRecordWrite = 0;
  private stepLossSum = 0;
  /** Bumped when the lease is lost: continuations of earlier work are dropped. */
  private generation = 0;
  /** The write of the latest committed state; the next commit waits for it. */
  private persisted: Promise<void> = Promise.resolve();
  /** The job's state in KV, written compare-and-set so that a deposed holder's late write fails. */
  private readonly state: FencedRecord;
  /** The standby coordinator this holder placed (or found) on another node, while that node lives. */
  private standby?: { node: string; inc: string; address?: string };
  private standbyRetryAt = 0;
  /** The last few committed steps, repeated in each step event for followers that lost one. */
  private recentSteps: StepSummary[] = [];

  constructor(
    private readonly job: string,
    private readonly spec: JobSpec,
    private readonly host: CoordinatorHost,
  ) {
    this.state = new FencedRecord(() => host.stateKv(), job);
  }

  // ---- lifecycle ----

  /** Starts campaigning for the job's lease (called from the actor's init). */
  start(ctx: ActorContext<CoordinatorMsg>): void {
    this.ctx = ctx;
    this.stopCampaign = this.host.campaign(
      jobNames.leaseKey(this.job),
      (term) => this.continue(() => void this.onAcquired(term).catch((e: Error) => this.fail(e.message))),
      (reason) => this.continue(() => this.onLeaseLost(reason)),
    );
  }

  /** Stops campaigning (actor stopped). */
  stop(): void {
    this.stopCampaign?.();
  }

  /** Handles one message. */
  handle(msg: CoordinatorMsg, ctx: ActorContext<CoordinatorMsg>): void {
    this.ctx = ctx;
    switch (msg.type) {
      case "coord.continue":
        return msg.run();
      case "coord.tick":
        return this.onTick();
      case "coord.membership":
        return this.onMembership(msg.event);
      case "coord.lease":
        return this.onLease(msg);
      case "coord.done":
        return this.onDone(msg);
      case "coord.applied":
        return this.onApplied(msg);
      case "coord.missing":
        return this.onMissing(msg);
      case "coord.evaluated":
        return this.onEvaluated(msg);
      case "coord.checkpointed":
        return this.onCheckpointed(msg);
      case "coord.status":
        ctx.reply({
          type: "coord.status.reply",
          phase: this.phase,
          term: this.term,
          step: this.p?.step ?? 0,
          epoch: this.p?.epoch ?? 0,
        });
        return;
      default:
        return assertNever(msg);
    }
  }

  private continue(run: () => void): void {
    this.ctx.self.tell({ type: "coord.continue", run } as never);
  }

  /** Runs async work; its outcome re-enters the actor as a continuation. */
  /**
   * Runs async work; its outcome re-enters the actor as a continuation. A failure fails the job
   * unless `recover` handles it (work whose failure costs only itself, such as admitting a joiner).
   */
  private task<T>(
    what: string,
    work: () => Promise<T>,
    then: (value: T) => void,
    recover?: (error: Error) => void,
  ): void {
    const generation = this.generation;
    work().then(
      (value) =>
        this.continue(() => {
          if (generation === this.generation) then(value);
        }),
      (error: Error) =>
        this.continue(() => {
          if (this.phase === "fenced" || this.phase === "done" || generation !== this.generation) return;
          if (recover) {
            this.ctx.log.warn(
              { job: this.job, err: error },
              `coordinator: ${what} failed; going on without it`,
            );
            return recover(error);
          }
          this.ctx.log.error({ job: this.job, err: error }, `coordinator: ${what} failed`);
          this.fail(`${what} failed: ${error.message}`);
        }),
    );
  }

  private tell(address: string, msg: Message): void {
    this.ctx.ref(address).tell(msg, this.ctx.self);
  }

  private ask<R extends Message>(address: string, msg: Message, timeoutMs = ASK_MS): Promise<R> {
    return this.ctx.ref(address).ask<R>(msg, { timeoutMs });
  }

  private now(): number {
    return Date.now();
  }

  private t(): number {
    return (this.now() - this.p.startedAt) / 1000;
  }

  // ---- lease: fresh start or takeover ----

  private async onAcquired(term: number): Promise<void> {
    this.term = term;
    const generation = this.generation;
    let saved: PersistedJob | undefined;
    try {
      saved = await this.claimState(term, generation);
    } catch (error) {
      if (generation !== this.generation) return; // lost again meanwhile; the next acquisition reads anew
      // Without the state this holder cannot act: give the lease up so a candidate tries again.
      this.ctx.log.error(
        { job: this.job, err: error },
        "could not read the job's state; resigning the lease",
      );
      await this.host.resign().catch(() => undefined);
      this.continue(() => this.fail(`job state unreadable: ${(error as Error).message}`));
      return;
    }
    this.continue(() => {
      if (generation !== this.generation) return;
      if (!saved) return this.p ? this.fail("the job's state vanished from the store") : this.place();
      if (saved.state !== "running") {
        this.phase = "done";
        this.ctx.log.info({ job: this.job, state: saved.state }, "job already ended; standby stands down");
        // A failed job has no TrainResult: its followers hear job.failed, as from the coordinator that failed it.
        this.host.publish(
          jobNames.eventsTopic(this.job),
          saved.state === "finished" && saved.result
            ? ({ type: "job.finished", job: this.job, result: saved.result } satisfies JobEvent)
            : ({
                type: "job.failed",
                job: this.job,
                error: saved.error ?? `job ${saved.state}`,
              } satisfies JobEvent),
        );
        this.ctx.stop();
        return;
      }
      this.takeOver(saved);
    });
  }

  /**
   * Reads the job's state and, if the job is running, writes it back under this term (the claim):
   * a write of the previous holder still in flight fails after that instead of landing over this
   * holder's. A previous holder's write that lands first moves the revision: read again.
   */
  private async claimState(term: number, generation: number): Promise<PersistedJob | undefined> {
    const opts = {
      abort: () => this.phase === "fenced" || generation !== this.generation,
      onRetry: (err: unknown) =>
        this.ctx.log.warn({ job: this.job, err }, "cannot reach the job's state yet; retrying"),
    };
    for (let round = 1; ; round++) {
      const bytes = await this.state.read(opts);
      if (!bytes) return undefined;
      const saved = packr.unpack(bytes) as PersistedJob;
      if (saved.state !== "running") return saved;
      try {
        await this.state.write(packr.pack({ ...saved, term }), opts);
        return saved;
      } catch (error) {
        if (!(error instanceof RecordFencedError) || round >= 5) throw error;
        this.ctx.log.warn(
          { job: this.job, round },
          "the job's state moved while taking it over; reading it again",
        );
      }
    }
  }

  /**
   * The lease is gone (renewal failed, e.g. while JetStream elected a new leader, or another
   * candidate took over): stop acting at once — work in flight is dropped (generation bump) — but
   * keep campaigning. Whoever holds the lease next, this one or the standby, takes over from the
   * persisted state and redoes the step in flight.
   */
  private onLeaseLost(reason: string): void {
    if (this.phase === "done") return;
    this.ctx.log.warn(
      { job: this.job, reason },
      "coordinator lost its lease; it stops acting and campaigns again",
    );
    this.phase = "campaigning";
    this.generation++;
    this.standby = undefined; // its placement may have been dropped with the generation: check again
    // Admissions in flight were dropped with the generation too; their nodes are candidates again.
    this.joining.clear();
    this.readyJoiners = [];
    this.done.clear();
    this.applied.clear();
  }

  /** Fresh job: wait for enough nodes, then spawn trainers, loaders, reducers and an evaluator. */
  private place(): void {
    this.phase = "placing";
    const startedAt = this.now();
    this.p = {
      job: this.job,
      spec: this.spec,
      state: "running",
      term: this.term,
      step: 0,
      epoch: 1,
      members: [],
      reducers: { addresses: [], bounds: [] },
      reducerGen: 0,
      paramCount: 0,
      ledger: ShardLedger.create(1, this.spec.epochs).snapshot(),
      checkpointStep: null,
      startedAt,
      backends: [],
      evals: [],
      membership: [],
      hashChecks: { checked: 0, consistent: true, mismatches: [] },
      commitAudit: { checked: 0, mismatches: [] },
      lastLoss: NaN,
    };
    this.ensureStandby();
    this.task(
      "placement",
      () => this.placeAll(startedAt),
      (placed) => this.onPlaced(placed),
    );
  }

  private async placeAll(
    startedAt: number,
  ): Promise<{ members: Member[]; prepared: Prepared[]; reducers: ReducerMap; reducerNodes: string[] }> {
    const { minWorkers, maxWorkers } = this.spec;
    let nodes: string[] = [];
    while (nodes.length < minWorkers) {
      nodes = this.candidates([]).slice(0, maxWorkers);
      if (nodes.length >= minWorkers) break;
      if (this.now() - startedAt > this.spec.placementTimeoutMs) {
        throw new Error(
          `only ${nodes.length} node(s) with a free slot after ${this.spec.placementTimeoutMs} ms; the job needs minWorkers=${minWorkers}`,
        );
      }
      await sleep(250);
    }
    const members = await Promise.all(nodes.map((node) => this.spawnMember(node)));
    const prepared = await Promise.all(
      members.map((m) =>
        this.ask<Prepared>(
          m.trainer,
          {
            type: "trainer.prepare",
            term: this.term,
            version: 0,
            reducers: { addresses: ["-"], bounds: [0, 1] },
          } as Message,
          PREPARE_MS,
        ),
      ),
    );
    const hashes = new Set(prepared.map((p) => p.hash));
    if (hashes.size !== 1)
      throw new Error(`trainers initialised different parameters: ${[...hashes].join(", ")}`);
    const paramCount = prepared[0].paramCount;
    const R = Math.max(1, Math.min(this.spec.reducers ?? Math.min(4, this.spec.maxWorkers), paramCount));
    const bounds = Array.from({ length: R + 1 }, (_, r) => Math.round((r * paramCount) / R));
    const reducerNodes = Array.from({ length: R }, (_, r) => nodes[r % nodes.length]);
    const addresses = await Promise.all(reducerNodes.map((node, r) => this.spawnReducer(node, r, bounds, 0)));
    const reducers = { addresses, bounds };
    await Promise.all(
      addresses.map((address, r) => this.loadReducer(address, r, reducers, members[0].trainer, 0, null)),
    );
    // Trainers learn where the reducers are (their params assembler needs the bounds).
    await Promise.all(
      members.map((m) =>
        this.ask<Prepared>(
          m.trainer,
          { type: "trainer.prepare", term: this.term, version: 0, reducers } as Message,
          PREPARE_MS,
        ),
      ),
    );
    return { members, prepared, reducers, reducerNodes };
  }

  private onPlaced(placed: { members: Member[]; prepared: Prepared[]; reducers: ReducerMap }): void {
    if (this.phase !== "placing") return;
    const trainSize = placed.prepared[0].trainSize;
    this.ledger = ShardLedger.create(trainSize, this.spec.epochs);
    this.p.members = placed.members;
    this.p.reducers = placed.reducers;
    this.p.paramCount = placed.prepared[0].paramCount;
    this.p.backends = [...new Set(placed.prepared.map((p) => p.backend))].sort();
    for (const m of placed.members)
      this.record({
        kind: "join",
        node: m.node,
        detail: `trainer on ${placed.prepared.find((_, i) => placed.members[i] === m)?.backend ?? "?"}`,
      });
    this.p.ledger = this.ledger.snapshot();
    this.persisted = this.persist();
    this.persisted.catch(() => undefined);
    this.spawnEvaluator();
    this.ctx.log.info(
      {
        job: this.job,
        members: placed.members.map((m) => m.node),
        reducers: placed.reducers.addresses.length,
        trainSize,
      },
      "job placed",
    );
    this.startStep();
  }

  private async spawnMember(node: string): Promise<Member> {
    const loader = await this.spawnOrReuse(node, "flock.loader", jobNames.loader(this.job), {
      job: this.job,
      prefetch: this.spec.prefetch,
    });
    const trainer = await this.spawnOrReuse(node, "flock.trainer", jobNames.trainer(this.job), {
      job: this.job,
      spec: this.spec,
    });
    return { node, trainer, loader };
  }

  private async spawnOrReuse(node: string, kind: string, name: string, args: unknown): Promise<string> {
    try {
      return (await this.host.spawnRemote(node, kind, name, args, { timeoutMs: ASK_MS })).address;
    } catch (error) {
      // After a takeover the actor may already live there (spawned by the previous coordinator).
      if (error instanceof ActorExistsError) return `${node}/${name}`;
      throw error;
    }
  }

  private async spawnReducer(node: string, r: number, bounds: number[], gen: number): Promise<string> {
    const name = `${jobNames.reducer(this.job, r)}.g${gen}`;
    return this.spawnOrReuse(node, "flock.reducer", name, {
      job: this.job,
      r,
      offset: bounds[r],
      length: bounds[r + 1] - bounds[r],
      spec: this.spec,
    });
  }

  private async loadReducer(
    address: string,
    r: number,
    reducers: ReducerMap,
    trainer: string,
    version: number,
    checkpointStep: number | null,
  ): Promise<void> {
    const { bounds } = reducers;
    const copy = await this.ask<ParamsCopy>(
      trainer,
      { type: "trainer.fetch", version, offset: bounds[r], length: bounds[r + 1] - bounds[r] } as Message,
      30_000,
    );
    await this.ask(
      address,
      { type: "reducer.load", term: this.term, version, data: copy.data, checkpointStep } as Message,
      30_000,
    );
  }

  private spawnEvaluator(): void {
    const name = jobNames.evaluator(this.job, this.term);
    this.task(
      "evaluator placement",
      () => this.spawnOrReuse(this.host.nodeId, "flock.evaluator", name, { job: this.job, spec: this.spec }),
      (address) => (this.evaluator = address),
      () => (this.evaluator = undefined), // spawned again when an evaluation needs it
    );
  }

  /** Nodes alive with a free slot, not already members (sorted for determinism). */
  private candidates(exclude: string[]): string[] {
    return this.host.membership
      .alive()
      .filter((n) => n.freeSlots > 0 && !exclude.includes(n.node))
      .map((n) => n.node)
      .sort();
  }

  /** A standby took over: restore from KV, roll back the step in flight, and go on. */
  private takeOver(saved: PersistedJob): void {
    this.phase = "recovering";
    this.p = { ...saved, term: this.term };
    // The claim made `saved` the durable record. A write of this coordinator's own earlier term
    // (one that re-acquired its lease) was dropped with that term: the next commit must not wait on it.
    this.persisted = Promise.resolve();
    const last = saved.lastStepEvent;
    if (last?.type === "job.step") {
      this.host.publish(jobNames.eventsTopic(this.job), { ...last, replay: true });
      this.recentSteps = [...(last.earlier ?? []), stepSummary(last)].slice(-RECENT_STEPS);
    }
    this.ledger = ShardLedger.restore(saved.ledger);
    this.record({
      kind: "failover",
      node: this.host.nodeId,
      detail: `coordinator taken over at step ${saved.step} (term ${this.term})`,
    });
    this.pendingRecovery.push({ record: this.p.membership.at(-1)!, at: this.now() });
    const alive = new Set(this.host.membership.alive().map((n) => n.node));
    for (const m of this.p.members.filter((m) => !alive.has(m.node)))
      this.removeMember(m.node, "death", "not alive at takeover");
    // The step in flight is redone; whatever it leased goes back to the pool and loaders drop it (new term).
    // Attempts of the new term never collide with the old coordinator's (reducers key buffers by them).
    this.attempt = this.term * 1000;
    this.ledger.revokeAll();
    this.spawnEvaluator();
    this.ensureStandby();
    this.recoverReducers(`takeover by ${this.host.nodeId}`, { releaseOrphans: true });
  }

  /**
   * Keeps a standby coordinator on another live node, so that losing this holder's node never
   * orphans the job, however many times it happens: placed when the job is placed or taken over,
   * and again when the standby's node dies or a node joins a job that had none to spare. The
   * standby campaigns for the lease and takes over from the persisted state.
   */
  private ensureStandby(): void {
    if (!this.p || !ACTING.has(this.phase)) return;
    const others = this.host.membership
      .alive()
      .filter((n) => n.node !== this.host.nodeId)
      .sort((a, b) => a.node.localeCompare(b.node));
    // Its node restarted (a new incarnation) counts as gone: the standby died with the old one.
    if (this.standby && others.some((n) => n.node === this.standby!.node && n.inc === this.standby!.inc))
      return;
    if (this.standby)
      this.ctx.log.warn({ job: this.job, node: this.standby.node }, "the standby coordinator's node is gone");
    this.standby = undefined;
    if (others.length === 0 || this.now() < this.standbyRetryAt) return;
    const standby: { node: string; inc: string; address?: string } = {
      node: others[0].node,
      inc: others[0].inc,
    };
    this.standby = standby;
    this.task(
      "standby coordinator placement",
      () =>
        this.spawnOrReuse(standby.node, "flock.coordinator", jobNames.coordinator(this.job), {
          job: this.job,
          spec: this.spec,
        }),
      (address) => {
        standby.address = address;
        this.ctx.log.info({ job: this.job, node: standby.node }, "standby coordinator in place");
      },
      () => {
        if (this.standby === standby) this.standby = undefined;
        this.standbyRetryAt = this.now() + 2_000;
      },
    );
  }

  // ---- steps ----

  private startStep(): void {
    if (this.phase === "fenced" || this.phase === "done" || this.phase === "finishing") return;
    this.admitJoiners();
    if (this.ledger.finished) return this.finish();
    if (this.p.members.length < this.spec.minWorkers) {
      if (this.phase !== "paused")
        this.ctx.log.warn(
          { job: this.job, members: this.p.members.length, minWorkers: this.spec.minWorkers },
          "job paused: below minWorkers",
        );
      this.phase = "paused";
      return;
    }
    this.phase = "stepping";
    const step = this.p.step + 1;
    this.done.clear();
    this.applied.clear();
    this.stepStartedAt = this.now();
    const members = [...this.p.members].sort((a, b) => a.node.localeCompare(b.node));
    const share = Math.floor(this.spec.globalBatch / members.length);
    const extra = this.spec.globalBatch % members.length;
    const reportHash = (step - 1) % this.spec.hashEvery === 0;
    members.forEach((m, i) => {
      this.tell(m.trainer, {
        type: "trainer.step",
        term: this.term,
        step,
        attempt: this.attempt,
        batchSize: share + (i < extra ? 1 : 0),
        loader: m.loader,
        reducers: this.p.reducers,
        reportHash,
      } as Message);
    });
  }

  private onDone(msg: StepDone): void {
    const current =
      this.phase === "stepping" &&
      msg.term === this.term &&
      msg.step === this.p.step + 1 &&
      msg.attempt === this.attempt;
    const member = this.p?.members.find((m) => m.node === msg.member);
    if (!current || !member) {
      // A straggler's late answer, or one from an aborted attempt: its batch was never committed.
      if (msg.batch && this.ledger) this.ledger.returnBatch(msg.batch);
      return;
    }
    if (msg.batch) {
      try {
        this.ledger.check(msg.batch);
      } catch (error) {
        // A batch of a revoked lease (its loader had it in flight): its positions are back in the pool.
        this.ctx.log.warn(
          { job: this.job, member: msg.member, err: error },
          "batch outside any live lease; left out of the step",
        );
        msg = { ...msg, batch: null, n: 0 };
      }
      if (msg.n === 0 && msg.batch) {
        this.ledger.returnBatch(msg.batch);
        msg = { ...msg, batch: null };
      }
    }
    this.done.set(msg.member, msg);
    if (msg.backend && !this.p.backends.includes(msg.backend))
      this.p.backends = [...this.p.backends, msg.backend].sort();
    if (msg.hash) {
      const version = msg.step - 1;
      if (!this.hashes.has(version)) this.hashes.set(version, new Map());
      this.hashes.get(version)!.set(msg.member, msg.hash);
    }
    if (this.p.members.every((m) => this.done.has(m.node))) this.commit();
  }

  private commit(): void {
    const entries = [...this.done.values()].filter((d) => this.p.members.some((m) => m.node === d.member));
    const contributing = entries.filter((d) => d.n > 0 && d.batch);
    const total = contributing.reduce((a, d) => a + d.n, 0);
    if (total === 0) {
      // Nobody had samples, yet the epoch is not done: whatever is still leased is held by loaders
      // that lost it (restarted, or left) — a loader holding positions always hands out a batch.
      this.ledger.revokeAll();
      this.attempt++;
      setTimeout(() => this.continue(() => this.phase === "stepping" && this.startStep()), 20).unref();
      return;
    }
    this.contributors = contributing.map((d) => d.member).sort();
    this.batches = contributing.map((d) => d.batch!);
    this.stepLossSum = contributing.reduce((a, d) => a + d.lossSum, 0);
    const step = this.p.step + 1;
    this.phase = "committing";
    this.commitStartedAt = this.now();
    const attempt = this.attempt;
    // Reducers may run at most one step ahead of the persisted record (they keep one step of undo,
    // and a takeover rolls that step back): so commit s+1 waits for the record of step s.
    this.task(
      "persisting the committed state",
      () => this.persisted,
      () => {
        if (this.phase !== "committing" || this.p.step + 1 !== step || this.attempt !== attempt) return;
        for (const address of this.p.reducers.addresses) {
          this.tell(address, {
            type: "reducer.commit",
            term: this.term,
            step,
            attempt,
            contributors: this.contributors,
            total,
          } as Message);
        }
      },
    );
  }

  /** Whether a reducer's answer is about the commit in flight (not an older step, attempt or term). */
  private isCurrentCommit(msg: { term: number; step: number; attempt: number }): boolean {
    return (
      this.phase === "committing" &&
      msg.term === this.term &&
      msg.step === this.p.step + 1 &&
      msg.attempt === this.attempt
    );
  }

  private onApplied(msg: Extract<CoordinatorCommand, { type: "coord.applied" }>): void {
    if (!this.isCurrentCommit(msg)) return;
    const expected = this.contributors.join(",");
    if (msg.summed.join(",") !== expected) {
      this.p.commitAudit.mismatches.push(
        `step ${msg.step} reducer ${msg.r} summed [${msg.summed.join(",")}], commit set [${expected}]`,
      );
      this.ctx.log.error(
        { job: this.job, step: msg.step, r: msg.r, summed: msg.summed, contributors: this.contributors },
        "a reducer summed other slices than the commit set",
      );
    }
    this.p.commitAudit.checked++;
    this.applied.add(msg.r);
    if (this.applied.size === this.p.reducers.addresses.length) this.committed();
  }

  private committed(): void {
    const step = this.p.step + 1;
    const total = this.batches.reduce((a, b) => a + (b.end - b.start), 0);
    this.ledger.commit(this.batches);
    this.p.step = step;
    this.attempt = 0;
    this.p.ledger = this.ledger.snapshot();
    this.p.lastLoss = this.stepLossSum / Math.max(1, total);
    const now = this.now();
    const dt = this.lastCommitAt ? now - this.lastCommitAt : now - this.stepStartedAt;
    this.lastCommitAt = now;
    this.ewmaStepMs = this.ewmaStepMs === 0 ? dt : 0.9 * this.ewmaStepMs + 0.1 * dt;
    for (const { record, at } of this.pendingRecovery) record.recoverySeconds = (now - at) / 1000;
    for (const { record } of this.pendingRecovery) this.emitMembership(record);
    this.pendingRecovery = [];
    this.checkHashes(step - 1);
    const event: JobEvent = {
      type: "job.step",
      job: this.job,
      step,
      epoch: this.ledger.epoch,
      epochs: this.spec.epochs,
      loss: this.p.lastLoss,
      members: this.p.members.length,
      samples: total,
      samplesPerSec: this.ewmaStepMs > 0 ? this.spec.globalBatch / (this.ewmaStepMs / 1000) : 0,
      at: now,
      t: this.t(),
      earlier: this.recentSteps,
    };
    this.recentSteps = [...this.recentSteps, stepSummary(event)].slice(-RECENT_STEPS);
    this.p.lastStepEvent = event;
    this.persisted = this.persist();
    this.persisted.catch(() => undefined); // surfaced by the next commit, which awaits it
    // Observers see a step once it is durable: a takeover can redo only steps nobody was told of.
    // A step that became durable is announced even if the lease was lost meanwhile; a successor
    // re-announces the last durable step as a replay, in case this holder died before announcing.
    this.persisted.then(
      () => this.host.publish(jobNames.eventsTopic(this.job), event),
      () => undefined,
    );
    if (step % this.spec.evalEvery === 0) {
      if (this.evaluator)
        this.tell(this.evaluator, {
          type: "evaluator.eval",
          term: this.term,
          version: step,
          reducers: this.p.reducers,
        } as Message);
      else this.spawnEvaluator(); // its node died: a new one scores the next evaluation
    }
    if (step % this.spec.checkpointEvery === 0)
      for (const a of this.p.reducers.addresses)
        this.tell(a, { type: "reducer.checkpoint", term: this.term, step } as Message);
    this.writeRecordThrottled();
    this.startStep();
  }

  private checkHashes(version: number): void {
    const got = this.hashes.get(version);
    if (!got) return;
    this.hashes.delete(version);
    const values = new Set(got.values());
    this.p.hashChecks.checked++;
    const consistent = values.size === 1;
    if (!consistent) {
      this.p.hashChecks.consistent = false;
      this.p.hashChecks.mismatches.push(`version ${version}: ${JSON.stringify(Object.fromEntries(got))}`);
      this.ctx.log.error(
        { job: this.job, version, hashes: Object.fromEntries(got) },
        "replicas disagree on the parameters",
      );
    }
    this.host.publish(jobNames.eventsTopic(this.job), {
      type: "job.hash",
      job: this.job,
      version,
      consistent,
      hashes: Object.fromEntries(got),
    } satisfies JobEvent);
  }

  private onMissing(msg: Extract<CoordinatorCommand, { type: "coord.missing" }>): void {
    if (!this.isCurrentCommit(msg)) return;
    this.abortAndRedo(`reducer ${msg.r}: ${msg.reason} ${msg.members.join(",")}`);
  }

  /** Drops the step in flight everywhere (rolling back reducers that applied it) and starts it again. */
  private abortAndRedo(reason: string): void {
    this.ctx.log.warn(
      { job: this.job, step: this.p.step + 1, attempt: this.attempt, reason },
      "step aborted; redoing it",
    );
    for (const d of this.done.values()) if (d.batch) this.ledger.returnBatch(d.batch);
    this.done.clear();
    this.phase = "recovering";
    const step = this.p.step + 1;
    this.attempt++;
    this.task(
      "aborting the step",
      () =>
        Promise.allSettled(
          this.p.reducers.addresses.map((a) =>
            this.ask(a, { type: "reducer.abort", term: this.term, step } as Message),
          ),
        ),
      (results) => {
        if (results.some((r) => r.status === "rejected"))
          return this.recoverReducers("a reducer did not answer the abort");
        this.startStep();
      },
    );
  }

  // ---- membership ----

  private onMembership(event: MembershipEvent): void {
    if (!this.p || this.phase === "campaigning" || this.phase === "fenced" || this.phase === "done") return;
    const node = event.node.node;
    if (event.kind === "dead" || event.kind === "left") {
      const lostReducer = this.reducerNodes().includes(node);
      if (this.p.members.some((m) => m.node === node))
        this.removeMember(
          node,
          event.kind === "dead" ? "death" : "leave",
          `${event.kind} (incarnation ${event.node.inc})`,
        );
      if (this.evaluator?.startsWith(`${node}/`)) this.evaluator = undefined;
      if (lostReducer && this.phase !== "placing")
        return this.recoverReducers(`reducer node ${node} ${event.kind}`);
      if (
        this.phase === "stepping" &&
        this.p.members.every((m) => this.done.has(m.node)) &&
        this.p.members.length > 0
      )
        return this.commit();
      if (this.phase === "committing" && this.contributors.includes(node))
        return this.abortAndRedo(`contributor ${node} ${event.kind} before the commit was applied`);
      if (this.p.members.length < this.spec.minWorkers && this.phase === "stepping") this.startStep();
    } else if (event.kind === "joined" || event.kind === "alive") {
      this.maybeJoin(node);
    }
  }

  private reducerNodes(): string[] {
    return this.p.reducers.addresses.map((a) => a.slice(0, a.indexOf("/")));
  }

  private removeMember(node: string, kind: "death" | "leave", detail: string): void {
    this.p.members = this.p.members.filter((m) => m.node !== node);
    this.readyJoiners = this.readyJoiners.filter((m) => m.node !== node);
    this.done.delete(node);
    this.ledger.revoke(node);
    this.p.epoch++;
    const record = this.record({ kind, node, detail });
    this.pendingRecovery.push({ record, at: this.now() });
  }

  private maybeJoin(node: string): void {
    if (this.phase === "placing" || this.phase === "finishing") return;
    const taken = this.p.members.length + this.readyJoiners.length + this.joining.size;
    if (
      taken >= this.spec.maxWorkers ||
      this.joining.has(node) ||
      this.p.members.some((m) => m.node === node)
    )
      return;
    if (!this.candidates([]).includes(node)) return;
    this.joining.add(node);
    this.task(
      `admitting ${node}`,
      async () => {
        const member = await this.spawnMember(node);
        const prepared = await this.ask<Prepared>(
          member.trainer,
          {
            type: "trainer.prepare",
            term: this.term,
            version: this.p.step,
            reducers: this.p.reducers,
          } as Message,
          PREPARE_MS,
        );
        return { member, prepared };
      },
      ({ member, prepared }) => {
        this.joining.delete(node);
        if (!this.host.membership.alive().some((n) => n.node === node)) return;
        this.readyJoiners.push(member);
        if (!this.p.backends.includes(prepared.backend))
          this.p.backends = [...this.p.backends, prepared.backend].sort();
        if (this.phase === "paused") this.startStep();
      },
      () => {
        // E.g. a reducer it synced from died meanwhile: clean up, and the next tick tries again.
        this.joining.delete(node);
        for (const name of [jobNames.trainer(this.job), jobNames.loader(this.job)]) {
          void this.host.stopRemote(`${node}/${name}`, { timeoutMs: 2_000 }).catch(() => undefined);
        }
      },
    );
  }

  /** Joiners that are ready take part from the next step. */
  private admitJoiners(): void {
    for (const m of this.readyJoiners) {
      if (this.p.members.length >= this.spec.maxWorkers) break;
      this.p.members.push(m);
      this.p.epoch++;
      this.record({ kind: "join", node: m.node, detail: `joined at step ${this.p.step + 1}` });
    }
    this.readyJoiners = [];
  }

  /** Replaces reducers on dead nodes (parameters from a trainer, optimizer state from the last checkpoint) and redoes the step. */
  private recoverReducers(reason: string, opts: { releaseOrphans?: boolean } = {}): void {
    this.phase = "recovering";
    for (const d of this.done.values()) if (d.batch) this.ledger.returnBatch(d.batch);
    this.done.clear();
    const step = this.p.step + 1;
    this.task(
      `reducer recovery (${reason})`,
      async () => {
        const alive = new Set(this.host.membership.alive().map((n) => n.node));
        const gen = this.p.reducerGen + 1;
        const addresses = [...this.p.reducers.addresses];
        // Survivors roll back the step in flight if they applied it; a reducer whose node is dead,
        // or that does not answer (it stopped after a failure), is lost and rebuilt.
        const answers = await Promise.allSettled(
          addresses.map((a) =>
            alive.has(a.slice(0, a.indexOf("/")))
              ? this.ask(a, { type: "reducer.abort", term: this.term, step } as Message)
              : Promise.reject(new Error("node not alive")),
          ),
        );
        const lost = addresses.map((a, r) => ({ a, r })).filter(({ r }) => answers[r].status === "rejected");
        if (lost.length > 0) {
          // Parameters come from a live member's trainer; failing that, from any live node's
          // trainer of this job: a joiner admitted after the last durable record holds them too.
          const members = this.p.members.filter((m) => alive.has(m.node));
          const others = [...alive].filter((n) => !members.some((m) => m.node === n)).sort();
          const trainers = [
            ...members.map((m) => m.trainer),
            ...others.map((n) => `${n}/${jobNames.trainer(this.job)}`),
          ];
          if (trainers.length === 0)
            throw new Error("no live trainer holds the parameters to rebuild a reducer from");
          const targets = members.length > 0 ? members.map((m) => m.node) : others;
          await Promise.all(
            lost.map(async ({ r }, i) => {
              const node = targets[(r + i) % targets.length];
              addresses[r] = await this.spawnReducer(node, r, this.p.reducers.bounds, gen);
            }),
          );
          const reducers = { addresses, bounds: this.p.reducers.bounds };
          await Promise.all(
            lost.map(({ r }) =>
              firstSuccess(trainers, (trainer) =>
                this.loadReducer(addresses[r], r, reducers, trainer, this.p.step, this.p.checkpointStep),
              ).catch((error: Error) => {
                throw new Error(
                  `no live trainer could give reducer ${r} the parameters of step ${this.p.step} (last: ${error.message})`,
                );
              }),
            ),
          );
        }
        if (opts.releaseOrphans) await this.releaseOrphans(alive);
        return { addresses, gen, lost: lost.length };
      },
      ({ addresses, gen, lost }) => {
        this.p.reducers = { addresses, bounds: this.p.reducers.bounds };
        if (lost > 0) this.p.reducerGen = gen;
        this.attempt++;
        this.ctx.log.info(
          { job: this.job, replaced: lost, step },
          "reducers ready; redoing the step in flight",
        );
        this.recoveryAttempts = 0;
        this.startStep();
      },
      (error) => {
        // Nodes may still be dying or joining: look again shortly, a bounded number of times.
        if (++this.recoveryAttempts > 20)
          return this.fail(`reducer recovery failed 20 times: ${error.message}`);
        setTimeout(
          () => this.continue(() => this.phase === "recovering" && this.recoverReducers(reason, opts)),
          500,
        ).unref();
      },
    );
  }
  private recoveryAttempts = 0;

  /**
   * After a takeover: stops this job's trainers and loaders on live nodes that are not members
   * (joiners the previous holder admitted after its last durable record). They hold compute slots
   * that would keep their nodes from being admitted again; once released, the nodes join anew.
   */
  private async releaseOrphans(alive: Set<string>): Promise<void> {
    const orphans = [...alive].filter((n) => !this.p.members.some((m) => m.node === n));
    const names = [jobNames.trainer(this.job), jobNames.loader(this.job)];
    const stopped = await Promise.allSettled(
      orphans.flatMap((n) => names.map((name) => this.host.stopRemote(`${n}/${name}`, { timeoutMs: 2_000 }))),
    );
    const released = orphans.filter((_, i) => stopped[i * names.length].status === "fulfilled");
    if (released.length > 0)
      this.ctx.log.info(
        { job: this.job, nodes: released },
        "released trainers of joiners not in the job's record",
      );
  }

  // ---- leases for loaders, evaluation, checkpoints ----

  private onLease(msg: Extract<CoordinatorCommand, { type: "coord.lease" }>): void {
    const stale =
      this.phase === "campaigning" ||
      msg.term !== this.term ||
      !this.ledger ||
      !this.p.members.some((m) => m.node === msg.member);
    const lease = stale ? undefined : this.ledger.lease(msg.member, msg.count);
    this.ctx.reply({
      type: "loader.leased",
      term: this.term,
      lease: lease ? { id: lease.id, epoch: lease.epoch, ranges: lease.ranges } : null,
      finished: this.ledger?.finished ?? false,
    });
  }

  private onEvaluated(msg: Extract<CoordinatorCommand, { type: "coord.evaluated" }>): void {
    if (msg.term !== this.term) return;
    const entry = {
      step: msg.version,
      epoch: this.ledger.epoch,
      t: this.t(),
      loss: msg.loss,
      accuracy: msg.accuracy,
    };
    if (!this.p.evals.some((e) => e.step === msg.version)) this.p.evals.push(entry);
    this.host.publish(jobNames.eventsTopic(this.job), {
      type: "job.eval",
      job: this.job,
      ...entry,
    } satisfies JobEvent);
    if (this.phase === "finishing" && msg.version === this.p.step) {
      this.finalEval = { loss: msg.loss, accuracy: msg.accuracy };
      this.complete();
    }
  }

  private onCheckpointed(msg: Extract<CoordinatorCommand, { type: "coord.checkpointed" }>): void {
    if (msg.term !== this.term) return;
    const key = `ckpt-${msg.step}`;
    const got = (this.checkpointAcks.get(key) ?? 0) + 1;
    this.checkpointAcks.set(key, got);
    if (got === this.p.reducers.addresses.length) {
      this.p.checkpointStep = msg.step;
      this.checkpointAcks.clear();
    }
  }
  private checkpointAcks = new Map<string, number>();

  // ---- deadlines ----

  private onTick(): void {
    const now = this.now();
    this.ensureStandby();
    if (this.phase === "stepping") {
      const waited = now - this.stepStartedAt;
      const someDone = this.done.size > 0;
      const patience = Math.min(this.spec.stepDeadlineMs, Math.max(2_000, 5 * this.ewmaStepMs));
      if (someDone && waited > patience) {
        for (const m of this.p.members.filter((m) => !this.done.has(m.node))) {
          this.record({
            kind: "straggler",
            node: m.node,
            detail: `left out of step ${this.p.step + 1} after ${waited} ms`,
          });
        }
        this.p.members
          .filter((m) => !this.done.has(m.node))
          .forEach((m) =>
            this.done.set(m.node, {
              type: "coord.done",
              term: this.term,
              step: this.p.step + 1,
              attempt: this.attempt,
              member: m.node,
              batch: null,
              n: 0,
              lossSum: 0,
              computeMs: 0,
            }),
          );
        this.commit();
      } else if (!someDone && waited > this.spec.stepDeadlineMs) {
        this.ctx.log.warn(
          { job: this.job, step: this.p.step + 1 },
          "no trainer answered the step; starting it again",
        );
        this.attempt++;
        this.startStep();
      }
    } else if (this.phase === "committing" && now - this.commitStartedAt > COMMIT_DEADLINE_MS) {
      this.abortAndRedo("commit not applied by every reducer in time");
    }
    if (this.phase === "stepping" || this.phase === "paused")
      for (const n of this.candidates(this.p.members.map((m) => m.node))) this.maybeJoin(n);
    if (this.phase !== "campaigning" && this.phase !== "fenced" && this.p) this.writeRecordThrottled();
  }

  // ---- end ----

  private finish(): void {
    this.phase = "finishing";
    if (!this.evaluator) {
      this.spawnEvaluator();
      setTimeout(() => this.continue(() => this.phase === "finishing" && this.finish()), 200).unref();
      return;
    }
    this.tell(this.evaluator, {
      type: "evaluator.eval",
      term: this.term,
      version: this.p.step,
      reducers: this.p.reducers,
    } as Message);
    setTimeout(() => this.continue(() => this.phase === "finishing" && this.finish()), 30_000).unref();
  }

  private complete(): void {
    this.phase = "done";
    this.p.state = "finished";
    const result = buildResult(this.p, this.ledger, "completed", this.finalEval);
    this.p.result = result;
    this.p.ledger = this.ledger.snapshot();
    this.host.publish(jobNames.eventsTopic(this.job), {
      type: "job.finished",
      job: this.job,
      result,
    } satisfies JobEvent);
    this.task(
      "closing the job",
      async () => {
        await this.persist();
        await this.writeRecord();
        await this.teardown();
        await this.host.resign();
      },
      () => this.ctx.stop(),
    );
  }

  private fail(error: string): void {
    if (this.phase === "done" || this.phase === "fenced") return;
    this.phase = "done";
    if (this.p) {
      this.p.state = "failed";
      this.p.error = error;
    }
    this.host.publish(jobNames.eventsTopic(this.job), {
      type: "job.failed",
      job: this.job,
      error,
    } satisfies JobEvent);
    this.task(
      "closing the failed job",
      async () => {
        if (this.p) {
          await this.persist();
          await this.writeRecord();
          await this.teardown();
        }
        await this.host.resign();
      },
      () => this.ctx.stop(),
    );
  }

  private async teardown(): Promise<void> {
    const addresses = [
      ...this.p.members.flatMap((m) => [m.trainer, m.loader]),
      ...this.p.reducers.addresses,
      ...(this.evaluator ? [this.evaluator] : []),
      ...(this.standby?.address ? [this.standby.address] : []),
    ];
    await Promise.allSettled(addresses.map((a) => this.host.stopRemote(a, { timeoutMs: 2_000 })));
  }

  // ---- records ----

  private record(r: Omit<MembershipRecord, "step" | "t" | "at">): MembershipRecord {
    const record: MembershipRecord = { ...r, step: this.p.step, t: this.t(), at: this.now() };
    this.p.membership.push(record);
    if (r.kind !== "death" && r.kind !== "leave" && r.kind !== "failover") this.emitMembership(record);
    else this.ctx.log.warn({ job: this.job, ...record }, `member ${r.kind}`);
    return record;
  }

  private emitMembership(record: MembershipRecord): void {
    this.host.publish(jobNames.eventsTopic(this.job), {
      type: "job.membership",
      job: this.job,
      step: record.step,
      t: record.t,
      at: record.at,
      event: {
        kind: record.kind,
        node: record.node,
        detail: record.detail,
        recoverySeconds: record.recoverySeconds,
      },
    } satisfies JobEvent);
  }

  /**
   * Writes the job's state; retries through a NATS server restart or a stream leader election. A
   * write fenced off by a successor's claim means this holder is deposed: it stops acting (as on
   * a lost lease; the lease itself is lost at its next renewal) and the write rejects.
   */
  private async persist(): Promise<void> {
    const generation = this.generation;
    try {
      await this.state.write(packr.pack(this.p), {
        // A holder that lost its lease stops writing: its successor owns the record now.
        abort: () => this.phase === "fenced" || generation !== this.generation,
        onRetry: (err, attempt) =>
          this.ctx.log.warn({ job: this.job, err, attempt }, "job state write failed; retrying"),
      });
    } catch (error) {
      if (error instanceof RecordFencedError)
        this.continue(() => generation === this.generation && this.onLeaseLost(error.message));
      throw error;
    }
  }

  private writeRecordThrottled(): void {
    if (this.now() - this.lastRecordWrite < 500) return;
    this.lastRecordWrite = this.now();
    void this.writeRecord().catch(() => undefined);
  }

  private writeRecord(): Promise<void> {
    return this.host.writeJobRecord({
      id: this.job,
      state: this.p.state === "running" ? this.phase : this.p.state,
      step: this.p.step,
      epoch: this.p.epoch,
      members: this.p.members.map((m) => m.node),
      updatedAt: this.now(),
    });
  }

  /** For tests: the coordinator's phase. */
  get currentPhase(): Phase {
    return this.phase;
  }

  /** For callers that hold a ref. */
  static ref(ctx: ActorContext<CoordinatorMsg>): ActorRef {
    return ctx.self;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function assertNever(x: never): never {
  throw new Error(`unexpected message ${JSON.stringify(x)}`);
}

/** The first of `items` for which `f` succeeds; throws the last error when none does. */
async function firstSuccess<T, R>(items: T[], f: (item: T) => Promise<R>): Promise<R> {
  let last: unknown = new Error("nothing to try");
  for (const item of items) {
    try {
      return await f(item);
    } catch (error) {
      last = error;
    }
  }
  throw last;
}
