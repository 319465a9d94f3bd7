/**
 * nats-server for tests: started per test, stopped in `t.after`, its log printed when the test fails.
 * @module
 */
import { after, before, test, type TestContext, type TestOptions } from "node:test";
import { connect, type NatsConnection } from "nats";
import {
  startNatsCluster,
  startNatsServer,
  type NatsClusterHandle,
  type NatsClusterOptions,
  type NatsServerHandle,
  type NatsServerOptions,
} from "../../tools/natsd/index.js";
import { registerCleanup, type HasAfter } from "./proc.js";
import { scaleTimeout } from "./timeouts.js";

/** Starts a nats-server and registers its `stop()` in `t.after`. The ready deadline grows under CI. */
export async function useNatsServer(t: HasAfter, options?: NatsServerOptions): Promise<NatsServerHandle> {
  return registerCleanup(t, await startNatsServer({ readyTimeoutMs: scaleTimeout(10_000), ...options }));
}

/** Starts a nats-server cluster and registers its `stop()` in `t.after`. Deadlines grow under CI. */
export async function useNatsCluster(
  t: HasAfter,
  n = 3,
  options?: NatsClusterOptions,
): Promise<NatsClusterHandle> {
  const scaled = { readyTimeoutMs: scaleTimeout(10_000), formTimeoutMs: scaleTimeout(20_000), ...options };
  return registerCleanup(t, await startNatsCluster(n, scaled));
}

/**
 * For a test file whose suites share one JetStream nats-server: starts it and connects before
 * them, closes the connection and stops the server after them (client first: a client whose
 * server went away first keeps a reconnect timer alive). Returns a getter of the connection, for
 * use inside tests.
 */
export function sharedJetStream(): () => NatsConnection {
  let server: NatsServerHandle | undefined;
  let nc: NatsConnection | undefined;
  before(async () => {
    server = await startNatsServer({ jetstream: true, readyTimeoutMs: scaleTimeout(10_000) });
    nc = await connect({ servers: server.url });
  });
  after(async () => {
    await nc?.close();
    await server?.stop();
  });
  return () => {
    if (!nc) throw new Error("the shared nats-server is not connected (used outside a test?)");
    return nc;
  };
}

/** Servers and clusters started through a {@link NatsKit}, stopped after the test. */
export interface NatsKit {
  server(options?: NatsServerOptions): Promise<NatsServerHandle>;
  cluster(n?: number, options?: NatsClusterOptions): Promise<NatsClusterHandle>;
  /** The recent log of every server started so far, each under its name. */
  logs(): string;
}

/**
 * `test(name, fn)` with a {@link NatsKit}: every server it starts is stopped in `t.after`, and when
 * the body throws, the servers' recent logs are printed to stderr before the failure is reported.
 * The test is bounded: `options.timeout` defaults to 30 s (×3 under CI).
 */
export function natsTest(
  name: string,
  fn: (t: TestContext, nats: NatsKit) => Promise<void>,
  options: TestOptions = {},
): void {
  // node:test tracks the test itself; its promise only says when it ended.
  void test(name, { timeout: scaleTimeout(30_000), ...options }, async (t) => {
    const servers: NatsServerHandle[] = [];
    const kit: NatsKit = {
      server: async (o) => {
        const s = await useNatsServer(t, o);
        servers.push(s);
        return s;
      },
      cluster: async (n, o) => {
        const c = await useNatsCluster(t, n, o);
        servers.push(...c.servers);
        return c;
      },
      logs: () => formatLogs(servers),
    };
    try {
      await fn(t, kit);
    } catch (err) {
      if (servers.length > 0) process.stderr.write(`\n[${name}] failed; nats-server logs:\n${kit.logs()}\n`);
      throw err;
    }
  });
}

/** Recent log text of each server, under a header with its name, pid and URL. */
export function formatLogs(servers: readonly NatsServerHandle[], maxCharsEach = 6000): string {
  return servers
    .map(
      (s) =>
        `--- nats-server ${s.serverName} (pid ${s.pid}, ${s.url}) ---\n${s.stderr().slice(-maxCharsEach)}`,
    )
    .join("\n");
}
