/**
 * The system under test, all on 127.0.0.1: a three-server JetStream NATS cluster, and `nodes`
 * flock daemons, each reaching NATS through its own controllable TCP proxy (so one node's link can
 * be cut or slowed alone). The harness's observer connects straight to server 0, which broker
 * faults never kill, so its view of the job's events does not depend on the faults it injects;
 * only a `jetstream-outage` stops it too (every server), and it reconnects when they restart.
 * @module
 */
import { freePorts, startNatsCluster, type NatsClusterHandle } from "../natsd/index.js";
import { startProxy, type ProxyHandle } from "./proxy.js";
import { ChaosDaemon } from "./daemon.js";
import type { InjectableBug } from "./bugs.js";
import type { FatalLine, NodeCounters, UnexpectedExit } from "./invariants.js";

/** Options of {@link ChaosCluster.start}. */
export interface ChaosClusterOptions {
  nodes: number;
  /** flock cluster name (subject namespace). */
  cluster: string;
  /** Directory for the daemons' and servers' logs. */
  logDir: string;
  /** Extra environment of the daemons. */
  env?: NodeJS.ProcessEnv;
  /** Bugs built into the daemons (see `bugs.ts`). */
  injectBugs?: readonly InjectableBug[];
  /** NATS servers (default 3: JetStream keeps R3 buckets through the loss of one). */
  natsServers?: number;
}

/** A running cluster of NATS servers, proxies and daemons. */
export class ChaosCluster implements AsyncDisposable {
  private scraper: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly nats: NatsClusterHandle,
    readonly proxies: readonly ProxyHandle[],
    readonly daemons: readonly ChaosDaemon[],
  ) {}

  /** Starts everything and waits until every daemon printed its ready line. */
  static async start(opts: ChaosClusterOptions): Promise<ChaosCluster> {
    const nats = await startNatsCluster(opts.natsServers ?? 3, {
      name: "chaos",
      noAdvertise: true,
      logDir: opts.logDir,
    });
    const proxies: ProxyHandle[] = [];
    const daemons: ChaosDaemon[] = [];
    const cluster = new ChaosCluster(nats, proxies, daemons);
    try {
      const ports = await freePorts(opts.nodes);
      for (let i = 0; i < opts.nodes; i++) {
        // Each node prefers a different server and falls back to the others in order.
        const order = nats.servers.map((_, k) => nats.servers[(i + k) % nats.servers.length]!);
        proxies.push(
          await startProxy({
            target: () => order.filter((s) => s.running).map((s) => ({ host: "127.0.0.1", port: s.port })),
            connectTimeoutMs: 500,
          }),
        );
        daemons.push(
          new ChaosDaemon({
            nodeId: `node-${i + 1}`,
            nats: proxies[i]!.url,
            cluster: opts.cluster,
            metricsPort: ports[i]!,
            env: opts.env,
            injectBugs: opts.injectBugs,
            logDir: opts.logDir,
          }),
        );
      }
      // Started one after the other: on two cores, parallel starts only make each slower.
      for (const d of daemons) await d.start();
      cluster.scraper = setInterval(() => void cluster.scrapeAll(), 2000);
      cluster.scraper.unref();
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** URL of the server the observer uses (never killed by a broker fault). */
  get observerUrl(): string {
    return this.nats.urls[0]!;
  }

  daemon(nodeId: string): ChaosDaemon | undefined {
    return this.daemons.find((d) => d.nodeId === nodeId);
  }

  proxyOf(nodeId: string): ProxyHandle {
    const i = this.daemons.findIndex((d) => d.nodeId === nodeId);
    if (i < 0) throw new Error(`no daemon ${nodeId}`);
    return this.proxies[i]!;
  }

  /** Reads every running daemon's counters. */
  async scrapeAll(): Promise<void> {
    await Promise.all(this.daemons.map((d) => d.scrape()));
  }

  counters(): NodeCounters[] {
    return this.daemons.flatMap((d) => d.counters());
  }

  unexpectedExits(): UnexpectedExit[] {
    return this.daemons.flatMap((d) => d.unexpectedExits());
  }

  fatalLines(): FatalLine[] {
    return this.daemons.flatMap((d) => d.fatalLines());
  }

  /** Heals every link, resumes paused daemons, then stops daemons, proxies and servers. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.scraper);
      for (const p of this.proxies) {
        p.heal();
        p.setLatency(0);
        p.setBandwidth(null);
      }
      await Promise.allSettled(this.daemons.map((d) => d.stop()));
      await Promise.allSettled(this.proxies.map((p) => p.close()));
      await Promise.allSettled(this.daemons.map((d) => d.close()));
      await this.nats.stop();
    })();
    return this.stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
