import {
  ActorExistsError,
  AskTimeoutError,
  type ActorContext,
  type Message,
} from "../../runtime/actor/index.js";
import { jobNames } from "../job/names.js";
import type { JobSpec } from "../job/spec.js";
import type { ReducerCommand } from "../reducer/protocol.js";
import type { ParamsCopy, Prepared, ReducerMap, TrainerCommand } from "../trainer/protocol.js";
import type { CoordinatorHost } from "./host.js";
import { ASK_MS, PREPARE_MS, type Command, type ReducerSpawn } from "./model.js";
import type { Member } from "./state.js";
import { DATA_CHECK_ACTOR, DataChecked, type DataCheckCommand } from "../data-check/protocol.js";
import { MAX_PROBLEM_CHARS } from "../compute/data-presence.js";
import { DATA_CHECK_MS } from "./data-checks.js";

type Cmd<K extends Command["kind"]> = Extract<Command, { kind: K }>;

/**
 * The coordinator's multi-step I/O: spawning, preparing, loading, aborting, rebuilding. Each
 * sequence only performs what the machine decided; its outcome goes back to the machine.
 */
export class CoordinatorEffects {
  constructor(
    private readonly job: string,
    private readonly spec: JobSpec,
    private readonly host: CoordinatorHost,
    private readonly ctx: () => ActorContext<Message>,
  ) {}

  private trainer(address: string): { ask<R extends Message>(msg: TrainerCommand, ms: number): Promise<R> } {
    const ref = this.ctx().ref<TrainerCommand>(address);
    return {
      ask: <R extends Message>(msg: TrainerCommand, ms: number) => ref.ask<R>(msg, { timeoutMs: ms }),
    };
  }

  private reducer(address: string, msg: ReducerCommand, ms = ASK_MS): Promise<Message> {
    return this.ctx().ref<ReducerCommand>(address).ask(msg, { timeoutMs: ms });
  }

  /** Spawns an actor of this job, or finds it already there (spawned by a previous coordinator). */
  async spawnOrReuse(node: string, kind: string, name: string, args: unknown): Promise<string> {
    try {
      return (await this.host.spawnRemote(node, kind, name, args, { timeoutMs: ASK_MS })).address;
    } catch (error) {
      if (error instanceof ActorExistsError) return `${node}/${name}`;
      throw error;
    }
  }

  /** The job's loader and trainer on `node`. */
  async spawnMember(node: string, inc: string | undefined): Promise<Member> {
    const loader = await this.spawnOrReuse(node, "flock.loader", jobNames.loader(this.job), {
      job: this.job,
      prefetch: this.spec.prefetch,
    });
    const trainer = await this.spawnOrReuse(node, "flock.trainer", jobNames.trainer(this.job), {
      job: this.job,
      spec: this.spec,
    });
    return inc === undefined ? { node, trainer, loader } : { node, trainer, loader, inc };
  }

  private prepare(trainer: string, term: number, version: number, reducers: ReducerMap): Promise<Prepared> {
    return this.trainer(trainer).ask<Prepared>(
      { type: "trainer.prepare", term, version, reducers },
      PREPARE_MS,
    );
  }

  /**
   * Asks `node`'s data checker what it lacks of the job's data. The answer is the asked node's:
   * it is attributed to `node`, whatever it says. No answer in time is itself a reason.
   */
  async checkData(c: Cmd<"checkData">): Promise<string[]> {
    const ref = this.ctx().ref<DataCheckCommand>(`${c.node}/${DATA_CHECK_ACTOR}`);
    try {
      const reply = await ref.ask(
        { type: "data.check", job: this.job, sources: c.sources },
        { timeoutMs: DATA_CHECK_MS },
      );
      const parsed = DataChecked.safeParse(reply);
      return parsed.success
        ? parsed.data.problems
        : [`${c.node} answered the data check with a ${reply.type}`];
    } catch (error) {
      return [
        `${c.node} did not answer the data check: ${(error as Error).message}`.slice(0, MAX_PROBLEM_CHARS),
      ];
    }
  }

  /** Places the first members: spawn on each node, then prepare (initialise parameters). */
  async placeMembers(c: Cmd<"placeMembers">): Promise<{ members: Member[]; prepared: Prepared[] }> {
    const members = await Promise.all(c.nodes.map((node) => this.spawnMember(node, c.incs[node])));
    const none = { addresses: ["-"], bounds: [0, 1] };
    const prepared = await Promise.all(members.map((m) => this.prepare(m.trainer, c.term, 0, none)));
    return { members, prepared };
  }

  private spawnReducer(s: ReducerSpawn, bounds: number[]): Promise<string> {
    const offset = bounds[s.r] ?? 0;
    const length = (bounds[s.r + 1] ?? offset) - offset;
    return this.spawnOrReuse(s.node, "flock.reducer", s.name, {
      job: this.job,
      r: s.r,
      offset,
      length,
      spec: this.spec,
    });
  }

  /** Gives reducer r the parameters of `version` from `trainer` (and its optimizer state from a checkpoint). */
  private async loadReducer(
    address: string,
    r: number,
    bounds: number[],
    trainer: string,
    term: number,
    version: number,
    checkpointStep: number | null,
  ): Promise<void> {
    const offset = bounds[r] ?? 0;
    const length = (bounds[r + 1] ?? offset) - offset;
    const copy = await this.trainer(trainer).ask<ParamsCopy>(
      { type: "trainer.fetch", version, offset, length },
      30_000,
    );
    await this.reducer(
      address,
      { type: "reducer.load", term, version, data: copy.data, checkpointStep },
      30_000,
    );
  }

  /** Spawns and seeds the first reducers, then tells the trainers where they are. */
  async startReducers(c: Cmd<"startReducers">): Promise<ReducerMap> {
    const addresses = await Promise.all(c.spawns.map((s) => this.spawnReducer(s, c.bounds)));
    const reducers = { addresses, bounds: c.bounds };
    await Promise.all(addresses.map((a, r) => this.loadReducer(a, r, c.bounds, c.source, c.term, 0, null)));
    // Trainers learn where the reducers are (their params assembler needs the bounds).
    await Promise.all(c.trainers.map((t) => this.prepare(t, c.term, 0, reducers)));
    return reducers;
  }

  /** Spawns a joiner and prepares it at the current version (it syncs from the reducers). */
  async admitJoiner(c: Cmd<"admitJoiner">): Promise<{ member: Member; prepared: Prepared }> {
    const member = await this.spawnMember(c.node, c.inc);
    const prepared = await this.prepare(member.trainer, c.term, c.version, c.reducers);
    return { member, prepared };
  }

  /** Asks each reducer to drop (or roll back) the step; `false` for one that did not answer or is known lost. */
  async abortReducers(c: Cmd<"abortReducers">): Promise<boolean[]> {
    const answers = await Promise.allSettled(
      c.targets.map((a) =>
        a === null
          ? Promise.reject(new Error("node not alive"))
          : this.reducer(a, { type: "reducer.abort", term: c.term, step: c.step }),
      ),
    );
    return answers.map((x) => x.status === "fulfilled");
  }

  /** Rebuilds lost reducers from the first live trainer that has the parameters, then releases orphans. */
  async rebuildReducers(c: Cmd<"rebuildReducers">): Promise<string[]> {
    const addresses = [...c.addresses];
    let timedOut = false; // some trainer did not answer (busy, or its node dying), rather than refuse
    await Promise.all(c.spawns.map(async (s) => (addresses[s.r] = await this.spawnReducer(s, c.bounds))));
    await Promise.all(
      c.spawns.map(({ r }) =>
        firstSuccess(
          c.trainers,
          (t) => this.loadReducer(addresses[r] ?? "", r, c.bounds, t, c.term, c.version, c.checkpointStep),
          (error) => error instanceof AskTimeoutError && (timedOut = true),
        ).catch((error: Error) => {
          throw new NoParametersError(
            `no live trainer could give reducer ${r} the parameters of step ${c.version} (last: ${error.message})`,
            timedOut,
          );
        }),
      ),
    );
    if (c.releaseNodes.length > 0) await this.releaseOrphans(c.releaseNodes);
    return addresses;
  }

  /**
   * After a takeover: stops this job's trainers and loaders on live nodes that are not members
   * (joiners the previous holder admitted after its last durable record). They hold compute slots
   * that would keep their nodes from being admitted again; once released, the nodes join anew.
   */
  private async releaseOrphans(nodes: string[]): Promise<void> {
    const names = [jobNames.trainer(this.job), jobNames.loader(this.job)];
    const stopped = await Promise.allSettled(
      nodes.flatMap((n) => names.map((name) => this.host.stopRemote(`${n}/${name}`, { timeoutMs: 2_000 }))),
    );
    const released = nodes.filter((_, i) => stopped[i * names.length]?.status === "fulfilled");
    if (released.length > 0)
      this.ctx().log.info(
        { job: this.job, nodes: released },
        "released trainers of joiners not in the job's record",
      );
  }

  /**
   * A restore: stops what is left of the abandoned timeline, then spawns every reducer anew and
   * has each load its part of the checkpoint of `step` (it checks the part's size and sha256).
   */
  async restoreReducers(c: Cmd<"restoreReducers">): Promise<string[]> {
    await this.stopAll(c.stop);
    const addresses = await Promise.all(c.spawns.map((s) => this.spawnReducer(s, c.bounds)));
    await Promise.all(
      c.parts.map((part) => {
        const msg: ReducerCommand = {
          type: "reducer.restore",
          term: c.term,
          step: c.step,
          bytes: part.bytes,
          sha256: part.sha256,
        };
        return this.reducer(addresses[part.r] ?? "", msg, 30_000);
      }),
    );
    return addresses;
  }

  /** Stops actors, each within 2 s; failures are ignored (the node may be gone). */
  async stopAll(addresses: string[]): Promise<void> {
    await Promise.allSettled(addresses.map((a) => this.host.stopRemote(a, { timeoutMs: 2_000 })));
  }
}

/**
 * No trainer tried could give a rebuilt reducer the parameters (none holds them any more).
 * `timedOut`: some trainer did not answer in time rather than refuse — it may still hold them.
 */
export class NoParametersError extends Error {
  override name = "NoParametersError";
  constructor(
    message: string,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

/** The first of `items` for which `f` succeeds; throws the last error when none does (each seen by `onError`). */
export async function firstSuccess<T, R>(
  items: readonly T[],
  f: (item: T) => Promise<R>,
  onError?: (error: unknown) => void,
): Promise<R> {
  let last: unknown = new Error("nothing to try");
  for (const item of items) {
    try {
      return await f(item);
    } catch (error) {
      onError?.(error);
      last = error;
    }
  }
  throw last;
}
