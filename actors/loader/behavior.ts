import type { ActorContext, Behavior } from "../../runtime/actor/index.js";
import type { Metrics } from "../../runtime/metrics.js";
import type { CoordinatorCommand, Leased } from "../coordinator/protocol.js";
import { IgnoredMessages } from "../ignored.js";
import { termRefused, type TermCheck } from "../term-guard.js";
import { takeFront, type Range } from "../ledger/intervals.js";
import type { LoaderCommand } from "./protocol.js";
import type { z } from "zod";
import type { BatchReady as BatchReadySchema } from "./protocol.js";

/** Reply of a loader to `loader.next`. */
export type BatchReady = z.infer<typeof BatchReadySchema>;

/** What a data loader is spawned with. */
export interface LoaderArgs {
  job: string;
  /** Leases requested at a time, as a multiple of the batch asked for. */
  prefetch: number;
}

interface HeldLease {
  id: string;
  epoch: number;
  ranges: Range[];
}

interface State {
  term: number;
  leases: HeldLease[];
  finished: boolean;
  /** The token of the prefetch in flight (0: none). */
  prefetching: number;
}

/** A prefetch's answer, kept until the loader's next message adopts it. */
interface Landed {
  token: number;
  leased: Leased | undefined;
}

/** Answers kept at most (one prefetch a term is in flight; a term change may leave one more). */
const MAX_LANDED = 8;

type Msg = LoaderCommand | Leased;
const ASK_MS = 5_000;

/**
 * A data loader: holds leases on shard ranges from the coordinator's ledger and hands its trainer
 * one batch at a time, asking for the next lease before the current one runs out (prefetch), so a
 * trainer rarely waits on the coordinator for data. A newer coordinator term voids every lease held.
 */
export function loaderBehavior(
  args: LoaderArgs,
  member: string,
  metrics?: Metrics,
  terms?: TermCheck,
): Behavior<Msg, State> {
  const ignored = new IgnoredMessages("loader", metrics);
  // A prefetch's answer lands here, not only in a message to itself: a tell to self that a full
  // mailbox drops would lose the lease (its samples never trained: the epoch could not end) and
  // leave `prefetching` set for good. The tell only wakes the loader up to adopt it sooner.
  const landed: Landed[] = [];
  let tokens = 0;
  return {
    init: () => ({ term: 0, leases: [], finished: false, prefetching: 0 }),
    async receive(state, msg, ctx) {
      const type = msg.type;
      switch (msg.type) {
        case "loader.next":
          // Forwarded by the trainer: the term is the coordinator's, whose address the message names.
          if (await termRefused(terms, ctx, ignored, msg, msg.coordinator)) return state;
          return onNext(state, msg, ctx);
        case "loader.leased":
          // Only ever told by this loader itself (no sender); from the wire it would hand out samples.
          if (ctx.from !== undefined) {
            ignored.unhandled(ctx, type, "not-from-self");
            return state;
          }
          return adoptLanded(state);
        case "loader.batch":
          ignored.unhandled(ctx, type, "reply-type");
          return state;
        default: {
          const unreachable: never = msg;
          void unreachable;
          ignored.unhandled(ctx, type, "unknown-type");
          return state;
        }
      }
    },
  };

  async function onNext(
    state: State,
    msg: Extract<Msg, { type: "loader.next" }>,
    ctx: ActorContext<Msg>,
  ): Promise<State> {
    state = adoptLanded(state);
    if (msg.term > state.term) state = { term: msg.term, leases: [], finished: false, prefetching: 0 };
    const coordinator = ctx.ref<CoordinatorCommand>(msg.coordinator);
    const request = () =>
      coordinator.ask<Leased>(
        { type: "coord.lease", term: state.term, member, count: Math.max(1, msg.n * args.prefetch) },
        { timeoutMs: ASK_MS },
      );
    if (held(state) === 0 && msg.n > 0) {
      try {
        state = adopt(state, await request());
      } catch (error) {
        // The coordinator is unreachable for now: no batch this step (the trainer reports none).
        ctx.log.warn({ job: args.job, err: error }, "data loader could not lease samples");
      }
    }
    const batch = take(state, msg.n);
    ctx.reply<BatchReady>({ type: "loader.batch", batch });
    if (held(state) < msg.n && state.prefetching === 0 && msg.n > 0) {
      const token = ++tokens;
      state.prefetching = token;
      const land = (leased: Leased | undefined) => {
        landed.push({ token, leased });
        if (landed.length > MAX_LANDED) landed.shift();
        ctx.self.tell({ type: "loader.leased", term: state.term, lease: null, finished: false });
      };
      request().then(land, () => land(undefined));
    }
    return state;
  }

  /** Adopts the prefetch answers that have landed (a failed one only ends its prefetch). */
  function adoptLanded(state: State): State {
    for (let next = landed.shift(); next; next = landed.shift()) {
      if (next.token === state.prefetching) state.prefetching = 0;
      if (next.leased) state = adopt(state, next.leased);
    }
    return state;
  }

  function adopt(state: State, leased: Leased): State {
    if (leased.term !== state.term) return state;
    if (leased.lease)
      state.leases.push({
        id: leased.lease.id,
        epoch: leased.lease.epoch,
        ranges: leased.lease.ranges.map((r) => [r[0], r[1]]),
      });
    state.finished = leased.finished;
    return state;
  }
}

function held(state: State): number {
  let n = 0;
  for (const l of state.leases) for (const [a, b] of l.ranges) n += b - a;
  return n;
}

/** Takes up to n contiguous positions from the oldest lease. */
function take(state: State, n: number): BatchReady["batch"] {
  while (state.leases[0]?.ranges.length === 0) state.leases.shift();
  const lease = state.leases[0];
  const first = lease?.ranges[0];
  if (!lease || !first || n <= 0) return null;
  const got = takeFront([first], n).taken[0];
  if (!got) return null;
  const [start, end] = got;
  lease.ranges[0] = [end, first[1]];
  if (end >= first[1]) lease.ranges.shift();
  return { lease: lease.id, epoch: lease.epoch, start, end };
}
