/**
 * The trainer's I/O around parameter versions: handing a version to its compute worker (and
 * remembering which one the worker holds), and fetching the version every reducer agrees on.
 * The decisions about versions are in `versions.ts`.
 * @module
 */
import type { ActorContext, Message } from "../../runtime/actor/index.js";
import type { Scheduler } from "../../runtime/clock.js";
import type { ComputeWorker } from "../compute/worker.js";
import type { ReducerCommand, SliceCopy } from "../reducer/protocol.js";
import type { ReducerMap } from "./protocol.js";
import { agreedVersion, holdVersion, paramsOf, type TrainerVersions } from "./versions.js";

/** Deadline of each `reducer.fetch`. */
const ASK_MS = 5_000;

/** Which version the compute worker holds, and how a version gets there. */
export class WorkerParams {
  /** The version last handed to the worker (-1: none). */
  private loaded = -1;

  constructor(private readonly worker: ComputeWorker) {}

  /**
   * Hands parameters to the worker without waiting for its acknowledgement: the worker handles
   * requests in order, so the next gradient call sees them, and the step's critical path does not
   * pay a round trip to the thread. A failure shows up in that next call.
   */
  load(version: number, params: Float32Array): void {
    this.loaded = version;
    this.worker.setParams(params.slice(), { transfer: true }).catch(() => undefined);
  }

  /** Makes sure the worker computes on `version` (a stale step, or a rollback, may need another than the newest). */
  ensure(state: TrainerVersions, version: number): Float32Array {
    const params = paramsOf(state, version);
    if (!params) throw new Error(`trainer does not hold version ${version}`);
    if (this.loaded !== version) this.load(version, params);
    return params;
  }

  /** Holds `params` as `version` and hands them to the worker. */
  hold(state: TrainerVersions, version: number, params: Float32Array): void {
    holdVersion(state, version, params);
    this.load(version, params);
  }
}

/** Fetches the newest parameter version (at least `atLeast`) that every reducer holds. */
export async function fetchFromReducers<M extends Message>(
  ctx: ActorContext<M>,
  scheduler: Scheduler,
  reducers: ReducerMap,
  atLeast: number,
  paramCount: number,
): Promise<{ version: number; params: Float32Array }> {
  let seen = "";
  for (let attempt = 0; attempt < 100; attempt++) {
    const slices = await Promise.all(
      reducers.addresses.map((a) =>
        ctx.ref<ReducerCommand>(a).ask<SliceCopy>({ type: "reducer.fetch" }, { timeoutMs: ASK_MS }),
      ),
    );
    const agreed = agreedVersion(slices, atLeast, paramCount);
    if (agreed) return agreed;
    seen = slices.map((x) => x.version).join(",");
    // Reducers mid-commit hold adjacent versions for a moment; ask again shortly.
    await scheduler.sleep(5 + attempt);
  }
  throw new Error(`reducers did not settle on one version ≥ ${atLeast} (last seen ${seen})`);
}
