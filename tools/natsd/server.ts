/**
 * Starts real nats-server processes for tests, the chaos harness, the benchmark and the embedded demo.
 * @module
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { findNatsServerBinary } from "./binary.js";
import { renderConfig, type ClusterConfig } from "./config.js";
import { NatsServerStartError } from "./errors.js";
import { portOf } from "./ports.js";
import { LogTail, ServerProcess, type ProcessExit } from "./process.js";
import { removeTempDir, trackTempDir } from "./reaper.js";

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Enable JetStream (default true). */
  jetstream?: boolean;
  /** Largest message payload the server accepts, in bytes (server default 1 MiB). */
  maxPayload?: number;
  /** Client port on 127.0.0.1; default: a free one picked by the server. */
  port?: number;
  /** JetStream store directory; default: a temp dir deleted by `stop()`. A given one is kept. */
  storeDir?: string;
  /** Join a cluster (routes on 127.0.0.1). See {@link startNatsCluster} for a whole cluster. */
  cluster?: ClusterConfig;
  /** Server name; must be unique within a JetStream cluster. Default: a generated one. */
  serverName?: string;
  /** Also append the server's log to `<logDir>/<serverName>.log`. */
  logDir?: string;
  /** Path of the nats-server binary; default: `$NATS_SERVER_BIN`, `$PATH`, then /usr/sbin. */
  binary?: string;
  /** Deadline for the server to become ready, per start (default 10 000 ms). */
  readyTimeoutMs?: number;
  /** Time between SIGTERM and SIGKILL in `stop()` and `restart()` (default 3000 ms). */
  stopGraceMs?: number;
  /** Monitoring HTTP port on 127.0.0.1: a number, -1 (default) for a free one, or false for none. */
  httpPort?: number | false;
  /** Verbose server logging (`debug: true`). */
  debug?: boolean;
  /** Appended verbatim to the generated config file. */
  extraConfig?: string;
}

/** A running (or killed, restartable) nats-server process. */
export interface NatsServerHandle extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>`; stays the same across `restart()`. */
  readonly url: string;
  /** Client port; kept across `restart()` so clients reconnect to the same address. */
  readonly port: number;
  /** Pid of the current process; changes on `restart()`. */
  readonly pid: number;
  /** JetStream store directory; kept across `restart()`. */
  readonly storeDir: string;
  /** `server_name` of this server. */
  readonly serverName: string;
  /** `http://127.0.0.1:<port>` of the monitoring endpoint (kept across restarts), if enabled. */
  readonly monitorUrl: string | undefined;
  /** Route port when clustered, else undefined. */
  readonly clusterPort: number | undefined;
  /** True while the current process is alive. */
  readonly running: boolean;
  /** Resolves when the current process exits (immediately if it already has). */
  exited(): Promise<ProcessExit>;
  /** SIGTERM, SIGKILL after the grace, wait for exit, delete temp files. Idempotent; final. */
  stop(): Promise<void>;
  /** Sends `signal` (default SIGKILL) to the current process without waiting; `restart()` revives it. */
  kill(signal?: NodeJS.Signals): void;
  /** Stops the current process if alive, then starts a new one on the same ports and store dir. */
  restart(): Promise<void>;
  /** Recent log text (the server logs to stderr), across restarts. */
  stderr(): string;
}

let counter = 0;

/**
 * Starts a nats-server bound to 127.0.0.1 and resolves once it accepts connections.
 * Every process is tracked and SIGKILLed when this Node process exits.
 * @throws NatsServerNotFoundError when the binary is missing (the message says how to install it).
 * @throws NatsServerStartError with the server's log when it exits early or is not ready in time.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = findNatsServerBinary(options.binary);
  const workDir = await mkdtemp(join(tmpdir(), "flock-natsd-"));
  trackTempDir(workDir);
  const server = new NatsServer(binary, workDir, options);
  try {
    await server.start(options.port ?? -1);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

class NatsServer implements NatsServerHandle {
  readonly storeDir: string;
  readonly serverName: string;
  private readonly logs = new LogTail();
  private readonly logFile: WriteStream | undefined;
  private proc: ServerProcess | undefined;
  private clientPort = -1;
  private httpPort: number | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly binary: string,
    private readonly workDir: string,
    private readonly options: NatsServerOptions,
  ) {
    this.serverName = options.serverName ?? `flock-${process.pid}-${++counter}`;
    this.storeDir = options.storeDir ?? join(workDir, "store");
    this.httpPort = options.httpPort === false ? undefined : (options.httpPort ?? -1);
    if (options.logDir) {
      this.logFile = createWriteStream(join(options.logDir, `${this.serverName}.log`), { flags: "a" });
      this.logFile.on("error", () => undefined); // a log file problem must not crash the launcher
    }
  }

  get url(): string {
    return `nats://127.0.0.1:${this.clientPort}`;
  }
  get port(): number {
    return this.clientPort;
  }
  get pid(): number {
    return this.proc?.child.pid ?? -1;
  }
  get monitorUrl(): string | undefined {
    return this.httpPort !== undefined && this.httpPort > 0 ? `http://127.0.0.1:${this.httpPort}` : undefined;
  }
  get clusterPort(): number | undefined {
    return this.options.cluster?.port;
  }
  get running(): boolean {
    return this.proc?.running ?? false;
  }

  exited(): Promise<ProcessExit> {
    return this.proc?.exited ?? Promise.resolve({ code: null, signal: null });
  }

  stderr(): string {
    return this.logs.toString();
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.proc?.signal(signal);
  }

  /** Spawns a process on `port` (-1: any) and waits until it is ready. */
  async start(port: number): Promise<void> {
    const o = this.options;
    const jetstream = o.jetstream ?? true;
    if (jetstream) await mkdir(this.storeDir, { recursive: true });
    const configPath = join(this.workDir, "nats-server.conf");
    const config = renderConfig({
      serverName: this.serverName,
      port,
      httpPort: this.httpPort,
      portsFileDir: this.workDir,
      jetstream,
      storeDir: this.storeDir,
      maxPayload: o.maxPayload,
      cluster: o.cluster,
      debug: o.debug,
      extraConfig: o.extraConfig,
    });
    await writeFile(configPath, config);
    const proc = new ServerProcess(this.binary, configPath, (text) => this.log(text));
    this.proc = proc;
    const ports = await proc.waitReady(this.workDir, o.readyTimeoutMs ?? 10_000, () => this.stderr());
    this.clientPort = portOf(ports.nats[0]!);
    if (ports.monitoring?.[0]) this.httpPort = portOf(ports.monitoring[0]);
  }

  restart(): Promise<void> {
    return this.serialize(async () => {
      if (this.stopping) throw new Error(`nats-server ${this.serverName} was stopped; it cannot restart`);
      await this.proc?.terminate(this.options.stopGraceMs ?? 3000);
      this.log(`\n--- flock natsd: restarting ${this.serverName} on port ${this.clientPort} ---\n`);
      // The old listening socket is gone once the process exited, but a port can linger briefly;
      // retry a few times (bounded) before giving up.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.start(this.clientPort);
          return;
        } catch (err) {
          if (!(err instanceof NatsServerStartError && err.addressInUse) || attempt >= 10) throw err;
          await sleep(100 * attempt);
        }
      }
    });
  }

  stop(): Promise<void> {
    this.stopping ??= this.serialize(async () => {
      await this.proc?.terminate(this.options.stopGraceMs ?? 3000);
      await new Promise<void>((resolve) => (this.logFile ? this.logFile.end(resolve) : resolve()));
      removeTempDir(this.workDir);
    });
    return this.stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private log(text: string): void {
    this.logs.append(text);
    this.logFile?.write(text);
  }

  private serialize<T>(op: () => Promise<T>): Promise<T> {
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
