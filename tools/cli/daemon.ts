import { InvalidArgumentError, Option, type Command } from "commander";
import { readFileSync } from "node:fs";
import { createLogger, redact, type Logger } from "../../runtime/log.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import { daemonIdentity, NatsTransport, parseCreds, type Creds } from "../../runtime/transport/index.js";
import { isValidNodeId } from "../../runtime/actor/subjects.js";
import { startNode, type FlockNode } from "../../runtime/daemon/node.js";
import { serveMetrics, type MetricsServer } from "../../runtime/daemon/metrics-server.js";
import {
  addNatsAuthOptions,
  clusterName,
  defaultNodeId,
  intIn,
  logLevelOption,
  natsOptions,
  natsUrls,
  usageErrorsExit2,
  type NatsAuthFlags,
} from "./options.js";

interface DaemonFlags extends NatsAuthFlags {
  nats: string[];
  nodeId: string;
  cluster: string;
  slots: number;
  device: "auto" | "gpu" | "cpu" | "wasm";
  heartbeatMs: number;
  deadAfterMs: number;
  metricsPort?: number;
  metricsHost: string;
  logLevel?: string;
  connectTimeoutMs: number;
  jobRetentionHours: number;
  dataCacheMib: number;
  checkpointStoreMaxMb?: number;
}

/** What the daemon tells the node's setup (the training kinds) from its flags. */
export interface DaemonSetupOptions {
  /** How long ended jobs' records and checkpoints are kept. */
  jobRetentionMs: number;
  /** Bound of the node's cache of stored-dataset shards, in bytes. */
  dataCacheBytes: number;
}

/** How long a draining daemon may take before it exits anyway. */
const EXIT_DEADLINE_MS = 8000;

/** Registers `flock daemon`. */
export function registerDaemonCommand(
  program: Command,
  setupNode: (node: FlockNode, opts: DaemonSetupOptions) => void | Promise<void>,
): void {
  const cmd = program
    .command("daemon")
    .description("Run a flock node on this machine: joins the cluster over NATS and hosts actors")
    .option("--nats <urls>", "NATS server URL(s), comma-separated (default: env NATS_URL)", natsUrls)
    .option(
      "--node-id <id>",
      "Node id, unique in the cluster (default: host name)",
      nodeIdArg,
      defaultNodeId(),
    )
    .option("--cluster <name>", "Cluster name", clusterName, "default")
    .option("--slots <n>", "Compute slots (trainers this node hosts at once)", intIn(0, 1024), 1)
    .addOption(
      new Option("--device <device>", "Compute device")
        .choices(["auto", "gpu", "cpu", "wasm"])
        .default("auto"),
    )
    .option("--heartbeat-ms <ms>", "Heartbeat interval", intIn(10, 60_000), 500)
    .option("--dead-after-ms <ms>", "Failure-detection deadline", intIn(50, 600_000), 2000)
    .option(
      "--metrics-port <port>",
      "Serve Prometheus metrics on http://<metrics-host>:<port>/metrics (0: a free port)",
      intIn(0, 65535),
    )
    .option(
      "--metrics-host <address>",
      "Address the metrics endpoint binds to (0.0.0.0: every interface)",
      "127.0.0.1",
    )
    .addOption(logLevelOption())
    .option(
      "--connect-timeout-ms <ms>",
      "Give up if NATS cannot be reached for this long at start",
      intIn(100, 600_000),
      30_000,
    )
    .option(
      "--job-retention-hours <h>",
      "Keep an ended job's record and checkpoints this long, then delete them",
      intIn(1, 100_000),
      168,
    )
    .option(
      "--data-cache-mib <n>",
      "Bound of this node's cache of stored-dataset shards (least recently used shards go first)",
      intIn(1, 16 * 1024 * 1024),
      2048,
    )
    .option(
      "--checkpoint-store-max-mb <mb>",
      "Size limit of the checkpoint object store, fixed by whoever creates it first (default: unlimited); " +
        "when full, new checkpoints fail and the older ones stay",
      intIn(1, 100_000_000),
    );
  addNatsAuthOptions(cmd);
  usageErrorsExit2(cmd);
  cmd.action(async (flags: DaemonFlags) => {
    const usage = (message: string): never =>
      cmd.error(`error: ${message}`, { exitCode: 2, code: "commander.usage" });
    if (!flags.nats) {
      if (!process.env.NATS_URL) usage("required option '--nats <urls>' not specified (or set NATS_URL)");
      try {
        flags.nats = natsUrls(process.env.NATS_URL!);
      } catch (err) {
        usage(`NATS_URL: ${(err as Error).message}`);
      }
    }
    const credsFile = flags.creds ?? process.env.NATS_CREDS;
    if (credsFile) {
      const explicit = cmd.getOptionValueSource("nodeId") !== "default";
      const bound = credsNodeId(credsFile, explicit ? flags.nodeId : undefined, flags.cluster);
      if ("error" in bound) usage(bound.error);
      else if (bound.nodeId !== undefined) flags.nodeId = bound.nodeId;
    }
    if (flags.deadAfterMs <= flags.heartbeatMs)
      usage(
        `--dead-after-ms (${flags.deadAfterMs}) must be greater than --heartbeat-ms (${flags.heartbeatMs})`,
      );
    await runDaemon(flags, setupNode);
  });
}

/** The node id the credentials file allows (see {@link daemonIdentity}), or a usage error naming the file. */
function credsNodeId(
  file: string,
  nodeId: string | undefined,
  cluster: string,
): { nodeId: string | undefined } | { error: string } {
  let creds: Creds;
  try {
    creds = parseCreds(readFileSync(file, "utf8"));
  } catch (error) {
    return { error: `credentials file ${file}: ${(error as Error).message}` };
  }
  const bound = daemonIdentity(creds, nodeId, cluster);
  if ("error" in bound) return { error: `credentials file ${file} cannot run this daemon: ${bound.error}` };
  if (bound.nodeId !== undefined && !isValidNodeId(bound.nodeId))
    return {
      error: `credentials file ${file} names node id "${bound.nodeId}", which is not a valid node id`,
    };
  return bound;
}

function nodeIdArg(value: string): string {
  if (!isValidNodeId(value))
    throw new InvalidArgumentError(
      `node ids use 1-128 letters, digits, _ $ : - (no dots: the id is one subject token); got "${value}"`,
    );
  return value;
}

async function runDaemon(
  flags: DaemonFlags,
  setupNode: (node: FlockNode, opts: DaemonSetupOptions) => void | Promise<void>,
): Promise<void> {
  // The node binds `node` itself (its child logger); bind only the cluster here.
  const log = createLogger({ cluster: flags.cluster }, flags.logLevel);
  const transport = await connectBounded(flags, log);
  transport.onStatus((s) => {
    if (s.kind === "error") log.warn({ err: s.error }, "nats: error");
    else if (s.kind === "reconnecting") log.debug({ status: s.kind }, "nats: reconnecting");
    else if (s.kind !== "connected")
      log.info({ status: s.kind, server: "server" in s ? s.server : undefined }, `nats: ${s.kind}`);
  });
  const stores = new JetStreamStores(transport.connection, {
    cluster: flags.cluster,
    ...(flags.checkpointStoreMaxMb ? { blobMaxBytes: flags.checkpointStoreMaxMb * 1024 * 1024 } : {}),
  });
  let node: FlockNode;
  try {
    node = await startNode({
      nodeId: flags.nodeId,
      cluster: flags.cluster,
      transport,
      stores,
      slots: flags.slots,
      device: flags.device,
      heartbeatMs: flags.heartbeatMs,
      deadAfterMs: flags.deadAfterMs,
      log,
      setup: (n) =>
        setupNode(n, {
          jobRetentionMs: flags.jobRetentionHours * 3600 * 1000,
          dataCacheBytes: flags.dataCacheMib * 1024 * 1024,
        }),
    });
  } catch (err) {
    log.error({ err }, "daemon could not start");
    await transport.close().catch(() => undefined);
    throw err;
  }
  let metricsServer: MetricsServer | undefined;
  if (flags.metricsPort !== undefined) {
    metricsServer = await serveMetrics(flags.metricsPort, () => node.metrics, flags.metricsHost);
    const where = `http://${flags.metricsHost}:${metricsServer.port}/metrics`;
    log.info({ port: metricsServer.port, host: flags.metricsHost }, `metrics on ${where}`);
  }
  node.onRejoined((e) => log.warn(e, `node ${node.nodeId} now runs as incarnation ${e.incarnation}`));
  process.stdout.write(
    `flock daemon ${node.nodeId} ready (incarnation ${node.incarnation}, cluster ${node.cluster})\n`,
  );
  log.info({ inc: node.incarnation, replicas: stores.replicaCount }, "daemon ready");

  let exiting = false;
  const exit = async (code: number, why: string): Promise<never> => {
    exiting = true;
    log.info({ code, why }, "daemon exiting");
    await metricsServer?.close().catch(() => undefined);
    await Promise.race([transport.close().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    process.exit(code);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (exiting) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    exiting = true;
    log.info({ signal }, "draining");
    setTimeout(() => {
      log.error({ deadlineMs: EXIT_DEADLINE_MS }, "drain took too long; exiting");
      process.exit(1);
    }, EXIT_DEADLINE_MS).unref();
    void node.drain().then(
      () => exit(0, `${signal}: drained`),
      (err: unknown) => {
        log.error({ err }, "drain failed");
        return exit(1, "drain failed");
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const stopped = await node.done;
  if (exiting) return new Promise<void>(() => undefined); // the signal handler exits
  if (stopped.status === "failed") {
    log.fatal(
      { err: stopped.error },
      `node ${node.nodeId} failed: ${stopped.error?.message ?? "unknown error"}`,
    );
    process.stderr.write(`flock daemon: ${stopped.error?.message ?? "node failed"}\n`);
    await exit(1, "node failed");
  }
  await exit(0, `node ${stopped.status}`);
}

/** Connects to NATS, retrying until `--connect-timeout-ms`, with a clear error after. */
async function connectBounded(flags: DaemonFlags, log: Logger): Promise<NatsTransport> {
  const opts = natsOptions(flags.nats, flags, `flock-daemon-${flags.nodeId}`);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `cannot reach NATS at ${redact(flags.nats.join(","))} within ${flags.connectTimeoutMs} ms`,
          ),
        ),
      flags.connectTimeoutMs,
    );
  });
  try {
    const transport = await Promise.race([NatsTransport.connect(opts), deadline]);
    log.info({ node: flags.nodeId, server: transport.connection.getServer() }, "connected to NATS");
    return transport;
  } catch (err) {
    throw new Error(
      `cannot connect to NATS at ${redact(flags.nats.join(","))}: ${redact((err as Error).message)}`,
      {
        cause: err,
      },
    );
  } finally {
    clearTimeout(timer);
  }
}
