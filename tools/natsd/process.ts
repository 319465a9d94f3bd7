/**
 * One run of a nats-server process: spawn, log capture, exit tracking, readiness.
 * @module
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect as tcpConnect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { NatsServerStartError, PollTimeoutError } from "./errors.js";
import { pollUntil } from "./poll.js";
import { readPortsFile, portOf, type PortsFile } from "./ports.js";
import { trackProcess } from "./reaper.js";

/** How a process ended. `error` is set when it could not be spawned at all. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** Keeps the last `maxChars` characters of a log. */
export class LogTail {
  private text = "";
  constructor(private readonly maxChars = 256 * 1024) {}
  append(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.maxChars * 1.5) this.text = this.text.slice(this.text.length - this.maxChars);
  }
  toString(): string {
    return this.text.length > this.maxChars ? this.text.slice(this.text.length - this.maxChars) : this.text;
  }
}

/** A spawned nats-server; `exited` settles (never rejects) when it ends or fails to spawn. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<ProcessExit>;
  private exit: ProcessExit | undefined;

  constructor(binary: string, configPath: string, onLog: (text: string) => void) {
    this.child = spawn(binary, ["-c", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    trackProcess(this.child);
    this.child.stdout?.setEncoding("utf8").on("data", onLog);
    this.child.stderr?.setEncoding("utf8").on("data", onLog);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => resolve((this.exit = { code, signal })));
      this.child.once("error", (error) => {
        // 'error' without a pid means it never started, and no 'exit' will follow.
        if (this.child.pid === undefined) resolve((this.exit = { code: null, signal: null, error }));
      });
    });
  }

  /** True until the process has exited (or failed to spawn). */
  get running(): boolean {
    return this.exit === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends a signal if the process is still running. */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves once it has exited. */
  async terminate(graceMs: number): Promise<ProcessExit> {
    if (!this.running) return this.exited;
    this.signal("SIGTERM");
    const ac = new AbortController();
    const graceOver = sleep(graceMs, "grace", { signal: ac.signal }).catch(() => "aborted");
    if ((await Promise.race([this.exited, graceOver])) === "grace") this.signal("SIGKILL");
    ac.abort();
    return this.exited;
  }

  /**
   * Waits until the server wrote its ports file and accepts a TCP connection, racing both against
   * an early exit. On failure the process is killed and a {@link NatsServerStartError} carrying the
   * server's log is thrown.
   */
  async waitReady(portsFileDir: string, timeoutMs: number, logs: () => string): Promise<PortsFile> {
    const ac = new AbortController();
    const deadline = Date.now() + timeoutMs;
    const pid = this.child.pid ?? -1;
    const ready = async (): Promise<PortsFile> => {
      const ports = await pollUntil(
        `the ports file of nats-server pid ${pid} in ${portsFileDir}`,
        () => readPortsFile(portsFileDir, pid),
        { timeoutMs, intervalMs: 20, signal: ac.signal },
      );
      const port = portOf(ports.nats[0]!);
      await pollUntil(`a TCP connection to nats-server on 127.0.0.1:${port}`, () => canConnect(port), {
        timeoutMs: Math.max(1, deadline - Date.now()),
        intervalMs: 20,
        signal: ac.signal,
      });
      return ports;
    };
    const earlyExit = this.exited.then((e): never => {
      throw new NatsServerStartError(
        `nats-server (pid ${pid}) ${describeExit(e)} before it was ready`,
        logs(),
        {
          cause: e.error,
        },
      );
    });
    try {
      return await Promise.race([ready(), earlyExit]);
    } catch (err) {
      this.signal("SIGKILL");
      await this.exited;
      if (err instanceof NatsServerStartError) throw err;
      const what = err instanceof PollTimeoutError ? "did not become ready" : "failed while starting";
      throw new NatsServerStartError(`nats-server (pid ${pid}) ${what}: ${String(err)}`, logs(), {
        cause: err,
      });
    } finally {
      ac.abort();
    }
  }
}

/** Human-readable "exited with code 1" / "was killed by SIGKILL" / "could not be spawned: ...". */
export function describeExit(e: ProcessExit): string {
  if (e.error) return `could not be spawned: ${e.error.message}`;
  if (e.signal) return `was killed by ${e.signal}`;
  return `exited with code ${e.code}`;
}

/** Resolves true if a TCP connection to 127.0.0.1:port succeeds within 1 s. */
export function canConnect(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
