import { z } from "zod";
import { systemScheduler, type Scheduler, type Timer } from "../clock.js";
import { silentLogger, type Logger } from "../log.js";
import type { KvStore, StoreProvider } from "../store/index.js";
import type { Unsubscribe } from "../transport/index.js";
import { abandon, registerAbandon } from "./abandon.js";
import { LeaseCandidate, openLeaseBucket } from "./lease.js";
import { isHolderDead } from "./tracker.js";
import type { Lease, MembershipView, NodeInfo } from "./types.js";

/** Bucket of the cluster-wide membership view (TTL: the view vanishes when no monitor writes it). */
export const MEMBERSHIP_BUCKET = "membership";
/** Key of the view in {@link MEMBERSHIP_BUCKET}. */
export const VIEW_KEY = "view";
/** TTL of the membership bucket. */
export const MEMBERSHIP_BUCKET_TTL_MS = 30_000;
/** Key of the monitor's lease. */
export const MONITOR_LEASE_KEY = "membership-monitor";

const NodeInfoSchema = z.object({
  node: z.string(),
  inc: z.string(),
  state: z.enum(["alive", "suspect", "dead", "left"]),
  slots: z.number(),
  freeSlots: z.number(),
  device: z.string(),
  backend: z.string().optional(),
  load: z.number(),
  lagMs: z.number(),
  actors: z.record(z.string(), z.number()),
  lastSeen: z.number(),
  joinedAt: z.number(),
});

/** The cluster-wide membership view that `flock status` reads. */
export const ClusterView = z.object({
  cluster: z.string(),
  /** Cluster epoch: increases by one with every membership change the monitors saw, across monitor changes. */
  epoch: z.number().int(),
  /** Lease holder that wrote it: `<nodeId>:<incarnation>`. */
  monitor: z.string(),
  /** Wall-clock ms of the write, on the monitor's clock. */
  updatedAt: z.number(),
  nodes: z.array(NodeInfoSchema),
});
export type ClusterView = z.infer<typeof ClusterView>;

/** Opens the membership bucket. */
export function openMembershipBucket(stores: StoreProvider): Promise<KvStore> {
  return stores.kv(MEMBERSHIP_BUCKET, { ttlMs: MEMBERSHIP_BUCKET_TTL_MS });
}

/** Reads the cluster-wide view, or undefined when no monitor has written one recently. */
export async function readClusterView(stores: StoreProvider): Promise<ClusterView | undefined> {
  const entry = await (await openMembershipBucket(stores)).get(VIEW_KEY);
  if (!entry) return undefined;
  const parsed = ClusterView.safeParse(JSON.parse(new TextDecoder().decode(entry.value)));
  return parsed.success ? parsed.data : undefined;
}

/** Options of {@link MembershipMonitor}. */
export interface MembershipMonitorOptions {
  stores: StoreProvider;
  view: MembershipView;
  cluster: string;
  /** `<nodeId>:<incarnation>` of this node. */
  holder: string;
  /** Monitor lease TTL (default 2000 ms: about the failure-detection deadline). */
  leaseTtlMs?: number;
  /** Rewrite period while nothing changes, to keep `lastSeen` and slots fresh (default 1000 ms). */
  refreshMs?: number;
  /** Clock and timers (default {@link systemScheduler}). */
  scheduler?: Scheduler;
  log?: Logger;
}

/**
 * One node per cluster holds the monitor lease and writes its membership view to KV on every
 * change (and every `refreshMs`); every node runs one of these as a candidate, so when the holder
 * dies (its lease lapses, or it is seen dead) another takes over and carries the epoch on.
 */
export class MembershipMonitor implements AsyncDisposable {
  private candidate: LeaseCandidate | undefined;
  private lease: Lease | undefined;
  private kv: KvStore | undefined;
  private clusterEpoch = 0;
  private pendingChanges = 0;
  private writing: Promise<void> | undefined;
  private again = false;
  private refreshTimer: Timer | undefined;
  private unsubscribe: Unsubscribe | undefined;
  private stopped = false;
  private readonly log: Logger;
  private readonly clock: Scheduler;

  private constructor(private readonly opts: MembershipMonitorOptions) {
    this.log = opts.log ?? silentLogger();
    this.clock = opts.scheduler ?? systemScheduler;
    registerAbandon(this, () => this.halt(false));
  }

  /** Opens the buckets and starts campaigning for the monitor lease. */
  static async start(opts: MembershipMonitorOptions): Promise<MembershipMonitor> {
    const m = new MembershipMonitor(opts);
    const ttlMs = opts.leaseTtlMs ?? 2000;
    const [leases, kv] = await Promise.all([
      openLeaseBucket(opts.stores, ttlMs),
      openMembershipBucket(opts.stores),
    ]);
    m.kv = kv;
    m.candidate = new LeaseCandidate(leases, MONITOR_LEASE_KEY, opts.holder, {
      ttlMs,
      log: m.log,
      scheduler: m.clock,
      isHolderDead: (h) => isHolderDead(opts.view, h),
    });
    m.candidate.onAcquired((lease) => void m.onAcquired(lease));
    m.candidate.onLost((reason) => m.onLost(reason));
    m.unsubscribe = opts.view.subscribe(() => {
      if (!m.lease?.held) return;
      m.pendingChanges++;
      m.write();
    });
    return m;
  }

  /** Whether this node is the monitor now. */
  get active(): boolean {
    return this.lease?.held ?? false;
  }

  /** Stops writing and campaigning; releases the lease so another node takes over at once. */
  async stop(): Promise<void> {
    await this.halt(true);
  }

  /** Stops; `release: false` abandons the lease instead (a dead process: see abandon.ts). */
  private async halt(release: boolean): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.refreshTimer?.cancel();
    if (!release) {
      if (this.candidate) await abandon(this.candidate);
      return;
    }
    await this.writing;
    await this.candidate?.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private async onAcquired(lease: Lease): Promise<void> {
    if (this.stopped) return;
    try {
      const stored = await readClusterView(this.opts.stores);
      // Carry the epoch on from the previous monitor; the change of monitor is itself a change.
      this.clusterEpoch = Math.max(this.clusterEpoch, stored?.epoch ?? 0);
    } catch (err) {
      this.log.warn({ err }, "membership monitor: could not read the previous view");
    }
    this.lease = lease;
    this.pendingChanges = 1;
    this.log.info(
      { holder: this.opts.holder, epoch: this.clusterEpoch + 1 },
      "membership monitor: this node now writes the cluster view",
    );
    this.refreshTimer?.cancel();
    this.refreshTimer = this.clock.every(this.opts.refreshMs ?? 1000, () => this.write());
    this.write();
  }

  private onLost(reason: string): void {
    this.lease = undefined;
    this.refreshTimer?.cancel();
    this.log.warn({ reason }, "membership monitor: lease lost; no longer writing the cluster view");
  }

  /** Writes the view; writes are serialized and coalesced. */
  private write(): void {
    if (this.stopped || !this.lease?.held) return;
    if (this.writing) {
      this.again = true;
      return;
    }
    this.writing = this.writeOnce().finally(() => {
      this.writing = undefined;
      if (this.again) {
        this.again = false;
        this.write();
      }
    });
  }

  private async writeOnce(): Promise<void> {
    const taken = this.pendingChanges;
    const epoch = this.clusterEpoch + taken;
    const view: ClusterView = {
      cluster: this.opts.cluster,
      epoch,
      monitor: this.opts.holder,
      updatedAt: Math.round(this.clock.now()),
      nodes: this.opts.view.nodes() as NodeInfo[],
    };
    try {
      if (!this.lease?.held) return;
      await this.kv!.put(VIEW_KEY, new TextEncoder().encode(JSON.stringify(view)));
      this.clusterEpoch = epoch;
      this.pendingChanges -= taken;
    } catch (err) {
      this.log.debug({ err }, "membership monitor: write failed; will retry");
      this.again = true;
      await this.clock.sleep(200);
    }
  }
}
