import { ActorSystem } from "../runtime/actor/index.js";
import { crashNode } from "../runtime/daemon/faults.js";
import { startNode, type FlockNode } from "../runtime/daemon/node.js";
import { silentLogger, type Logger } from "../runtime/log.js";
import { MemoryStores } from "../runtime/store/index.js";
import { InProcBus } from "../runtime/transport/index.js";
import type { ClusterHandle } from "./api.js";
import { setupNode, type SetupOptions } from "./kinds.js";

/** Options of {@link startEmbeddedCluster}. */
export interface EmbeddedOptions {
  /** Nodes to start (each with one slot: one trainer each). */
  nodes: number;
  cluster?: string;
  log?: Logger;
  heartbeatMs?: number;
  deadAfterMs?: number;
  /**
   * Deliberate faults by node id (e.g. one slow trainer), for tests and the bench only: the
   * `flock` command line never sets them.
   */
  faults?: Record<string, SetupOptions["faults"]>;
}

/**
 * The embedded default: several flock nodes in this process on an in-process bus, with in-memory
 * stores. Every message still goes through the codec; each trainer computes in its own worker
 * thread, so two trainers on a two-core machine really run in parallel. Nodes can be killed and
 * restarted (a new incarnation) to show recovery without any external process.
 */
export class EmbeddedCluster {
  readonly bus = new InProcBus();
  readonly stores = new MemoryStores();
  readonly nodes = new Map<string, FlockNode>();
  private client?: ActorSystem;

  private constructor(private readonly opts: EmbeddedOptions) {}

  /** Starts the nodes and a client actor system to submit jobs from. */
  static async start(opts: EmbeddedOptions): Promise<EmbeddedCluster> {
    const cluster = new EmbeddedCluster(opts);
    for (let i = 0; i < opts.nodes; i++) await cluster.startNode(`node-${i + 1}`);
    cluster.client = await ActorSystem.start({
      nodeId: `client-${process.pid}`,
      transport: cluster.bus.connect(),
      cluster: opts.cluster,
      ownsTransport: true,
    });
    return cluster;
  }

  /** Starts (or restarts, as a new incarnation) one node. */
  async startNode(nodeId: string): Promise<FlockNode> {
    const node = await startNode({
      nodeId,
      cluster: this.opts.cluster,
      transport: this.bus.connect(),
      stores: this.stores,
      slots: 1,
      heartbeatMs: this.opts.heartbeatMs,
      deadAfterMs: this.opts.deadAfterMs,
      log: (this.opts.log ?? silentLogger()).child({ node: nodeId }),
      setup: (n) => setupNode(n, { faults: this.opts.faults?.[nodeId] }),
    });
    this.nodes.set(nodeId, node);
    return node;
  }

  /** Kills a node abruptly (no goodbye): the others detect its death through missed heartbeats. */
  async kill(nodeId: string): Promise<void> {
    const node = this.nodes.get(nodeId);
    if (!node) throw new Error(`no embedded node ${nodeId}`);
    this.nodes.delete(nodeId);
    await crashNode(node);
  }

  /** What jobs are submitted through. */
  get handle(): ClusterHandle {
    const first = () => [...this.nodes.values()][0];
    return {
      client: this.client!,
      stores: this.stores,
      aliveNodes: () =>
        first()
          ?.membership.alive()
          .map((n) => n.node)
          .sort() ?? [],
      describe: "embedded (in-process bus)",
      close: () => this.close(),
    };
  }

  /** Stops every node and the client. */
  async close(): Promise<void> {
    await this.client?.stop();
    await Promise.allSettled([...this.nodes.values()].map((n) => n.stop()));
    this.nodes.clear();
  }
}
