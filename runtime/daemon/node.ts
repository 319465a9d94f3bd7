import { randomUUID } from "node:crypto";
import { ActorSystem, isValidSegment } from "../actor/index.js";
import { systemScheduler, type Scheduler, type Timer } from "../clock.js";
import { abandon } from "../cluster/abandon.js";
import { NodeIdInUseError } from "../cluster/errors.js";
import { openLeaseBucket } from "../cluster/lease.js";
import { Membership } from "../cluster/membership.js";
import { MembershipMonitor } from "../cluster/monitor.js";
import type { Lease, MembershipView } from "../cluster/types.js";
import { silentLogger, type Logger } from "../log.js";
import { EventLoopLag, Metrics } from "../metrics.js";
import type { StoreProvider } from "../store/index.js";
import type { Unsubscribe } from "../transport/index.js";
import { registerCrash } from "./crash-registry.js";
import { claimIdentity, holderOf } from "./identity.js";
import { LocalInfoReporter } from "./local-info.js";
import { SlotLedger } from "./slots.js";
import type { FlockNode, NodeOptions, NodeRejoined, NodeStatus, NodeStopped } from "./types.js";

export type { FlockNode, NodeOptions, NodeRejoined, NodeStatus, NodeStopped } from "./types.js";

/**
 * Starts a node on any transport: the CLI daemon (NATS and JetStream) and the embedded default
 * (several nodes in one process on an InProcBus with MemoryStores) both use it.
 * @throws NodeIdInUseError when another live process runs this node id in this cluster.
 */
export async function startNode(opts: NodeOptions): Promise<FlockNode> {
  const node = new Node(opts);
  try {
    await node.start();
  } catch (err) {
    await node.abort();
    throw err;
  }
  return node;
}

class Node implements FlockNode {
  readonly nodeId: string;
  readonly cluster: string;
  readonly stores: StoreProvider;
  readonly device: string;
  readonly metrics: Metrics;
  readonly slots: SlotLedger;
  readonly done: Promise<NodeStopped>;
  backend: string | undefined;
  private inc = newIncarnation();
  private sys: ActorSystem | undefined;
  private mem: Membership | undefined;
  private monitor: MembershipMonitor | undefined;
  private identity: Lease | undefined;
  private st: NodeStatus = "starting";
  private draining: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly pastIncs = new Set<string>();
  private readonly drainHooks = new Map<() => Promise<void>, string>();
  private readonly rejoinListeners = new Set<(e: NodeRejoined) => void>();
  private readonly offs: Unsubscribe[] = [];
  private readonly lag = new EventLoopLag();
  private readonly lagReset: Timer;
  private readonly clock: Scheduler;
  private readonly log: Logger;
  private readonly reporter: LocalInfoReporter;
  private resolveDone!: (s: NodeStopped) => void;

  constructor(private readonly opts: NodeOptions) {
    if (!isValidSegment(opts.nodeId))
      throw new Error(`invalid node id "${opts.nodeId}": use letters, digits, _ $ . : -`);
    this.nodeId = opts.nodeId;
    this.cluster = opts.cluster ?? opts.stores.cluster ?? "default";
    if (opts.stores.cluster !== undefined && opts.stores.cluster !== this.cluster) {
      throw new Error(
        `the store provider belongs to cluster "${opts.stores.cluster}", the node to "${this.cluster}"`,
      );
    }
    this.stores = opts.stores;
    this.device = opts.device ?? "auto";
    this.metrics = opts.metrics ?? new Metrics({ node: opts.nodeId });
    this.reporter = new LocalInfoReporter(this.metrics);
    this.slots = new SlotLedger(opts.slots ?? 1);
    this.log = (opts.log ?? silentLogger()).child({ node: opts.nodeId });
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.clock = opts.scheduler ?? systemScheduler;
    this.lagReset = this.clock.every(10_000, () => this.lag.reset());
    registerCrash(this, () => this.crash());
  }

  get incarnation(): string {
    return this.inc;
  }
  get system(): ActorSystem {
    if (!this.sys) throw new Error(`node ${this.nodeId} has no actor system yet`);
    return this.sys;
  }
  get membership(): MembershipView {
    if (!this.mem) throw new Error(`node ${this.nodeId} has no membership yet`);
    return this.mem;
  }
  get status(): NodeStatus {
    return this.st;
  }

  onDrain(hook: () => Promise<void>): () => void {
    this.drainHooks.set(hook, this.inc);
    return () => this.drainHooks.delete(hook);
  }

  onRejoined(listener: (e: NodeRejoined) => void): Unsubscribe {
    this.rejoinListeners.add(listener);
    return () => this.rejoinListeners.delete(listener);
  }

  async start(): Promise<void> {
    const heartbeatMs = this.opts.heartbeatMs ?? 500;
    const deadAfterMs = this.opts.deadAfterMs ?? 2000;
    this.mem = new Membership({
      transport: this.opts.transport,
      cluster: this.cluster,
      nodeId: this.nodeId,
      incarnation: this.inc,
      heartbeatMs,
      deadAfterMs,
      localInfo: () =>
        this.reporter.read({
          nodeId: this.nodeId,
          slots: this.slots,
          device: this.device,
          backend: this.backend,
          lag: this.lag,
          system: this.sys,
          peers: () => this.mem?.nodes() ?? [],
        }),
      log: this.log,
      metrics: this.metrics,
      scheduler: this.clock,
    });
    this.offs.push(this.mem.onDeclaredDead((reason) => void this.rejoin(reason)));
    await this.claim();
    await this.startIncarnation();
    this.st = "running";
    this.log.info({ inc: this.inc }, `node ${this.nodeId} running (incarnation ${this.inc})`);
  }

  /** Cleans up after a failed start. */
  async abort(): Promise<void> {
    await this.shutdown("failed", false).catch(() => undefined);
  }

  drain(): Promise<void> {
    if (this.draining) return this.draining;
    if (this.stopping) return this.stopping;
    this.draining = (async () => {
      this.st = "draining";
      this.log.info({ inc: this.inc }, `node ${this.nodeId} draining`);
      await this.mem?.announce("leaving");
      await this.monitor?.stop();
      const hooks = [...this.drainHooks.keys()];
      const timeoutMs = this.opts.drainTimeoutMs ?? 5000;
      const outcome = await Promise.race([
        Promise.allSettled(hooks.map((h) => Promise.resolve().then(h))).then((rs) => rs),
        this.clock.sleep(timeoutMs).then(() => "timeout" as const),
      ]);
      if (outcome === "timeout")
        this.log.warn({ timeoutMs }, "drain hooks did not finish in time; stopping anyway");
      else
        for (const r of outcome)
          if (r.status === "rejected") this.log.warn({ err: r.reason }, "a drain hook failed");
      await this.shutdown("stopped", true);
    })();
    return this.draining;
  }

  stop(): Promise<void> {
    if (this.draining) return this.draining;
    return this.shutdown("stopped", true);
  }

  /** Abrupt stop without any announcement or release; reached only through `faults.ts`. */
  private async crash(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.log.warn({ inc: this.inc }, `node ${this.nodeId} crashing (no goodbye)`);
    this.mem?.stopHeartbeats();
    if (this.monitor) await abandon(this.monitor);
    if (this.identity) await abandon(this.identity);
    await this.shutdown("crashed", false);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ---- incarnations ----

  private async claim(): Promise<void> {
    const heartbeatMs = this.mem!.tracker.timing.heartbeatMs;
    const deadAfterMs = this.mem!.tracker.timing.deadAfterMs;
    const ttlMs = this.opts.identityTtlMs ?? Math.max(15_000, deadAfterMs * 3);
    const kv = await openLeaseBucket(this.stores, ttlMs);
    const silenceMs = deadAfterMs + heartbeatMs;
    this.identity = await claimIdentity({
      kv,
      nodeId: this.nodeId,
      cluster: this.cluster,
      incarnation: this.inc,
      ttlMs,
      renewEveryMs: Math.min(ttlMs / 3, deadAfterMs / 2),
      membership: this.mem!,
      silenceMs,
      maxWaitMs: ttlMs + silenceMs,
      pastIncarnations: this.pastIncs,
      scheduler: this.clock,
      log: this.log,
    });
    const lease = this.identity;
    lease.onLost((reason) => {
      if (this.identity === lease) void this.rejoin(`identity lease lost: ${reason}`);
    });
  }

  private async startIncarnation(): Promise<void> {
    this.sys = await ActorSystem.start({
      nodeId: this.nodeId,
      transport: this.opts.transport,
      cluster: this.cluster,
      incarnation: this.inc,
      log: this.log.child({ inc: this.inc }),
      metrics: this.metrics,
    });
    this.sys.setFence(this.mem!.fence);
    await this.opts.setup?.(this);
    this.mem!.startHeartbeats();
    if (this.opts.monitor !== false) {
      this.monitor = await MembershipMonitor.start({
        stores: this.stores,
        view: this.mem!,
        cluster: this.cluster,
        holder: holderOf(this.nodeId, this.inc),
        leaseTtlMs: this.mem!.tracker.timing.deadAfterMs,
        scheduler: this.clock,
        log: this.log,
      });
    }
  }

  private async rejoin(reason: string): Promise<void> {
    if (this.st !== "running") return;
    this.st = "rejoining";
    const previous = this.inc;
    this.log.warn(
      { reason, previous },
      `node ${this.nodeId} must not go on as incarnation ${previous} (${reason}); rejoining as a new incarnation`,
    );
    this.metrics.inc(
      "flock_node_rejoins_total",
      {},
      1,
      "Times this node ended an incarnation and started a new one",
    );
    try {
      this.mem!.stopHeartbeats();
      await this.monitor?.stop();
      this.monitor = undefined;
      await this.sys?.stop();
      this.drainHooks.clear();
      this.slots.reset();
      const old = this.identity;
      this.identity = undefined;
      await old?.release();
      this.pastIncs.add(previous);
      this.inc = newIncarnation();
      this.mem!.rejoinAs(this.inc);
      await this.claim();
      if (this.stopping || this.draining) return;
      await this.startIncarnation();
      if (this.stopping || this.draining) return;
      this.st = "running";
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.log.error(
        { err: error },
        `node ${this.nodeId} cannot rejoin${error instanceof NodeIdInUseError ? " (its id is taken)" : ""}; stopping`,
      );
      await this.shutdown("failed", false, error);
      return;
    }
    this.log.warn(
      { previous, inc: this.inc },
      `node ${this.nodeId} rejoined as incarnation ${this.inc} (was ${previous})`,
    );
    const event: NodeRejoined = { previous, incarnation: this.inc, reason };
    for (const l of [...this.rejoinListeners]) {
      try {
        l(event);
      } catch (error) {
        setImmediate(() => this.log.error({ err: error }, "rejoin listener threw"));
      }
    }
  }

  private shutdown(status: NodeStopped["status"], goodbye: boolean, error?: Error): Promise<void> {
    this.stopping ??= (async () => {
      this.mem?.stopHeartbeats();
      if (goodbye) await this.mem?.announce("left");
      if (goodbye) await this.monitor?.stop();
      else if (this.monitor) await abandon(this.monitor);
      if (goodbye) await this.identity?.release();
      else if (this.identity) await abandon(this.identity);
      await this.sys?.stop();
      await this.mem?.stop();
      for (const off of this.offs.splice(0)) off();
      this.lagReset.cancel();
      this.lag.stop();
      this.st = status;
      this.log.info({ inc: this.inc, status }, `node ${this.nodeId} ${status}`);
      this.resolveDone(error ? { status, error } : { status });
    })();
    return this.stopping;
  }
}

function newIncarnation(): string {
  return randomUUID().slice(0, 13);
}
