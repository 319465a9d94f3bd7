import { hostname } from "node:os";
import { holdOpen, systemScheduler, type Scheduler } from "../clock.js";
import type { Logger } from "../log.js";
import { acquireLease, readLease, takeOverLease } from "../cluster/lease.js";
import { NodeIdInUseError } from "../cluster/errors.js";
import type { Membership } from "../cluster/membership.js";
import type { Lease } from "../cluster/types.js";
import { encodeKeyToken, type KvStore } from "../store/index.js";

/** Options of {@link claimIdentity}. */
export interface ClaimIdentityOptions {
  /** Lease bucket with TTL `ttlMs`. */
  kv: KvStore;
  nodeId: string;
  cluster: string;
  incarnation: string;
  ttlMs: number;
  renewEveryMs: number;
  /** Listening already, with this incarnation as self: it hears other processes using this id. */
  membership: Membership;
  /** Silence (no heartbeat, no renewal) after which a previous holder counts as gone. */
  silenceMs: number;
  /** Give up after this long. */
  maxWaitMs: number;
  /** Earlier incarnations of this very process: their lease is taken over at once. */
  pastIncarnations: ReadonlySet<string>;
  /** Clock and timers of the claim and of the lease (default {@link systemScheduler}). */
  scheduler?: Scheduler;
  log: Logger;
}

/** KV key of a node's identity lease. */
export function identityKey(nodeId: string): string {
  return `node.${encodeKeyToken(nodeId)}`;
}

/** The lease holder string of a node incarnation: `<nodeId>:<incarnation>`. */
export function holderOf(nodeId: string, incarnation: string): string {
  return `${nodeId}:${incarnation}`;
}

/**
 * Takes the identity lease `node.<id>`, so that two live processes never run the same node id.
 *
 * - Free: taken at once.
 * - Held by an earlier incarnation of this process (a rejoin): taken over at once.
 * - Held by another process that is alive: {@link NodeIdInUseError} as soon as that is clear, i.e.
 *   two of its heartbeats are heard or it renews twice (one heartbeat or renewal may have been in
 *   flight when a killed process died).
 * - Held by a process that went silent (killed: no heartbeat and no renewal for `silenceMs`, the
 *   failure-detection deadline): taken over by compare-and-set without waiting for the whole TTL.
 * - Anything else past `maxWaitMs`: {@link NodeIdInUseError}.
 */
export async function claimIdentity(o: ClaimIdentityOptions): Promise<Lease> {
  const key = identityKey(o.nodeId);
  const holder = holderOf(o.nodeId, o.incarnation);
  const clock = o.scheduler ?? systemScheduler;
  const leaseOpts = {
    scheduler: clock,
    ttlMs: o.ttlMs,
    renewEveryMs: o.renewEveryMs,
    log: o.log,
    meta: { node: o.nodeId, inc: o.incarnation, pid: process.pid, host: hostname() },
  };
  const started = clock.now();
  let first: { holder: string; revision: number; at: number; renewals: number } | undefined;
  let waitingLogged = false;
  for (;;) {
    const foreign = o.membership.foreignSelf(o.silenceMs);
    if (foreign)
      throw new NodeIdInUseError(
        o.nodeId,
        o.cluster,
        `a live process heartbeats as this node (incarnation ${foreign})`,
      );
    let lease: Lease | undefined;
    let rec: Awaited<ReturnType<typeof readLease>>;
    try {
      lease = await acquireLease(o.kv, key, holder, leaseOpts);
      if (lease) return lease;
      rec = await readLease(o.kv, key);
    } catch (err) {
      // The store is unreachable for now (a NATS blip, a JetStream leader election): keep trying.
      if (clock.now() - started > o.maxWaitMs)
        throw new Error(`cannot reach the identity lease of node ${o.nodeId}: ${(err as Error).message}`, {
          cause: err,
        });
      o.log.warn({ err }, "identity lease: store unreachable; retrying");
      await holdOpen(clock.sleep(250));
      continue;
    }
    const now = clock.now();
    if (rec) {
      const prevInc = rec.holder.slice(rec.holder.lastIndexOf(":") + 1);
      if (o.pastIncarnations.has(prevInc)) {
        const taken = await takeOverLease(o.kv, key, holder, rec.revision, leaseOpts);
        if (taken) return taken;
        continue;
      }
      if (!first || first.holder !== rec.holder) {
        first = { holder: rec.holder, revision: rec.revision, at: now, renewals: 0 };
      } else if (rec.revision !== first.revision && ++first.renewals < 2) {
        // One renewal may have been in flight when its process died; two mean it is alive.
        first.revision = rec.revision;
        first.at = now;
      } else if (rec.revision !== first.revision) {
        throw new NodeIdInUseError(
          o.nodeId,
          o.cluster,
          `its holder ${rec.holder} (pid ${String(rec.meta.pid)} on ${String(rec.meta.host)}) keeps renewing it`,
        );
      } else if (now - first.at >= o.silenceMs) {
        o.log.warn(
          { previous: rec.holder },
          `taking over the identity of node ${o.nodeId} from a previous holder silent for ${Math.round(now - first.at)} ms`,
        );
        const taken = await takeOverLease(o.kv, key, holder, rec.revision, leaseOpts);
        if (taken) return taken;
        first = undefined;
      }
      if (!waitingLogged) {
        waitingLogged = true;
        o.log.info(
          { previous: rec.holder },
          `node id ${o.nodeId} is held by ${rec.holder}; waiting up to ${o.silenceMs} ms to see whether it is alive`,
        );
      }
    }
    if (now - started > o.maxWaitMs)
      throw new NodeIdInUseError(
        o.nodeId,
        o.cluster,
        `its identity lease did not become free within ${o.maxWaitMs} ms`,
      );
    await holdOpen(clock.sleep(Math.min(200, o.silenceMs / 4)));
  }
}
