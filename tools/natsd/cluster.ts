/**
 * Starts a JetStream-enabled nats-server cluster on loopback and waits until it has formed.
 * @module
 */
import { connect } from "nats";
import { NatsClusterFormError, NatsServerStartError } from "./errors.js";
import { pollUntil } from "./poll.js";
import { freePorts } from "./ports.js";
import { startNatsServer, type NatsServerHandle, type NatsServerOptions } from "./server.js";

/** Options of {@link startNatsCluster}; server options apply to every server. */
export interface NatsClusterOptions extends Omit<
  NatsServerOptions,
  "port" | "cluster" | "serverName" | "storeDir"
> {
  /** Cluster name (default `flock`); servers are named `<name>-<i>`. */
  name?: string;
  /** Keep servers from advertising each other's client URLs to clients (`no_advertise`). */
  noAdvertise?: boolean;
  /** Deadline for routes and the JetStream meta leader (default 20 000 ms). */
  formTimeoutMs?: number;
}

/** A running cluster. Each server keeps its client, route and monitoring ports across `restart()`. */
export interface NatsClusterHandle extends AsyncDisposable {
  readonly name: string;
  readonly servers: readonly NatsServerHandle[];
  /** Client URLs of all servers, in server order; give all of them to clients. */
  readonly urls: readonly string[];
  /**
   * Waits until every running server has routes to every other running one, and (with JetStream)
   * a meta leader is elected and the JetStream API answers. Call it after `restart()` of a member.
   */
  waitFormed(timeoutMs?: number): Promise<void>;
  /** Stops every server. Idempotent. */
  stop(): Promise<void>;
}

const START_ATTEMPTS = 3;

/**
 * Starts `n` servers with routes to each other on 127.0.0.1 (route ports chosen by the launcher:
 * bind port 0, close, retry the whole cluster on "address already in use"), JetStream on by
 * default, each with a unique `server_name`; resolves once the cluster has formed.
 */
export async function startNatsCluster(n = 3, options: NatsClusterOptions = {}): Promise<NatsClusterHandle> {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`cluster size must be a positive integer, got ${n}`);
  for (let attempt = 1; ; attempt++) {
    const servers = await startServers(n, options).catch(async (err: unknown) => {
      if (err instanceof NatsServerStartError && err.addressInUse && attempt < START_ATTEMPTS)
        return undefined;
      throw err;
    });
    if (!servers) continue;
    const cluster = new NatsCluster(options.name ?? "flock", servers, options.jetstream ?? true);
    try {
      await cluster.waitFormed(options.formTimeoutMs ?? 20_000);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }
}

async function startServers(n: number, options: NatsClusterOptions): Promise<NatsServerHandle[]> {
  const { name = "flock", noAdvertise, formTimeoutMs: _f, ...serverOptions } = options;
  const routePorts = await freePorts(n);
  const results = await Promise.allSettled(
    routePorts.map((port, i) =>
      startNatsServer({
        ...serverOptions,
        serverName: `${name}-${i}`,
        cluster: {
          name,
          port,
          noAdvertise,
          routes: routePorts.filter((p) => p !== port).map((p) => `nats-route://127.0.0.1:${p}`),
        },
      }),
    ),
  );
  const started = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all(started.map((s) => s.stop()));
    throw failed.reason;
  }
  return started;
}

class NatsCluster implements NatsClusterHandle {
  private stopping: Promise<void> | undefined;
  constructor(
    readonly name: string,
    readonly servers: readonly NatsServerHandle[],
    private readonly jetstream: boolean,
  ) {}

  get urls(): readonly string[] {
    return this.servers.map((s) => s.url);
  }

  async waitFormed(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const left = (): number => Math.max(1, deadline - Date.now());
    try {
      const running = this.servers.filter((s) => s.running);
      await pollUntil(
        `routes between the ${running.length} running servers of cluster ${this.name}`,
        async () => {
          const counts = await Promise.all(running.map((s) => monitor<{ num_routes: number }>(s, "/routez")));
          return counts.every((c) => c.num_routes >= running.length - 1);
        },
        { timeoutMs: left(), intervalMs: 50 },
      );
      if (!this.jetstream) return;
      await pollUntil(
        `a JetStream meta leader in cluster ${this.name}`,
        async () => {
          const jsz = await Promise.all(running.map((s) => monitor<JszMeta>(s, "/jsz")));
          return jsz.every((j) => Boolean(j.meta_cluster?.leader));
        },
        { timeoutMs: left(), intervalMs: 50 },
      );
      await this.waitJetStreamApi(
        running.map((s) => s.url),
        left(),
      );
    } catch (err) {
      const logs = this.servers.map((s) => `--- ${s.serverName} ---\n${s.stderr().slice(-2000)}`).join("\n");
      throw new NatsClusterFormError(`cluster ${this.name} did not form: ${String(err)}\n${logs}`, {
        cause: err,
      });
    }
  }

  stop(): Promise<void> {
    this.stopping ??= Promise.all(this.servers.map((s) => s.stop())).then(() => undefined);
    return this.stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** The real check: a client's JetStream account info request succeeds. */
  private async waitJetStreamApi(servers: string[], timeoutMs: number): Promise<void> {
    const nc = await connect({ servers, timeout: Math.min(timeoutMs, 5000), maxReconnectAttempts: 2 });
    try {
      await pollUntil(
        `the JetStream API of cluster ${this.name}`,
        async () => {
          const jsm = await nc.jetstreamManager({ timeout: 1000 });
          await jsm.getAccountInfo();
          return true;
        },
        { timeoutMs, intervalMs: 100 },
      );
    } finally {
      await nc.close();
    }
  }
}

interface JszMeta {
  meta_cluster?: { leader?: string };
}

async function monitor<T>(server: NatsServerHandle, path: string): Promise<T> {
  if (!server.monitorUrl) throw new Error(`server ${server.serverName} has no monitoring endpoint`);
  const res = await fetch(`${server.monitorUrl}${path}`, { signal: AbortSignal.timeout(1000) });
  if (!res.ok) throw new Error(`${path} on ${server.serverName}: HTTP ${res.status}`);
  return (await res.json()) as T;
}
