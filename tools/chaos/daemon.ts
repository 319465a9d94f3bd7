/**
 * One `flock daemon` child process under the harness's control, across restarts: each start is a
 * new incarnation with the same node id. Captures its output, flags crash-class log lines, tells
 * the exits the harness caused from those it did not, and scrapes its /metrics counters.
 * @module
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { trackProcess } from "../natsd/index.js";
import type { FatalLine, NodeCounters, UnexpectedExit } from "./invariants.js";
import type { InjectableBug } from "./bugs.js";

/**
 * The composition root the daemons run: dist/bin/flock.js next to this compiled module, or
 * `$FLOCK_CHAOS_BIN` (to run the daemons of another build).
 */
export const FLOCK_BIN =
  process.env.FLOCK_CHAOS_BIN ?? fileURLToPath(new URL("../../bin/flock.js", import.meta.url));
/**
 * The test entry point daemons run when the harness injects a bug (see `faulty-daemon.ts`): next
 * to this compiled module, or `$FLOCK_CHAOS_FAULTY_BIN`.
 */
export const FAULTY_BIN =
  process.env.FLOCK_CHAOS_FAULTY_BIN ?? fileURLToPath(new URL("./faulty-daemon.js", import.meta.url));

/**
 * Lines in a daemon's output that mean a crash-class error, whatever the harness did: the words,
 * pino's fatal level, and the banner Node prints when an uncaught error ends the process.
 */
const FATAL_LINE = /unhandledRejection|uncaughtException|FATAL|"level":60|^Node\.js v\d+\.\d+/;
const READY_LINE = /flock daemon (\S+) ready \(incarnation ([^,]+), cluster ([^)]+)\)/;
const TAIL_LINES = 60;

/** How to start one daemon. */
export interface DaemonOptions {
  nodeId: string;
  /** NATS URL(s) the daemon connects to (its proxy's). */
  nats: string;
  cluster: string;
  metricsPort: number;
  slots?: number;
  /** Extra environment. */
  env?: NodeJS.ProcessEnv;
  /** Bugs to build in: the daemon then runs {@link FAULTY_BIN} instead of {@link FLOCK_BIN}. */
  injectBugs?: readonly InjectableBug[];
  /** Directory for `<nodeId>.log` (all incarnations, appended). */
  logDir: string;
  /** Deadline for the ready line (default 60 s). */
  readyTimeoutMs?: number;
}

/** One process of a daemon. */
interface Incarnation {
  child: ChildProcess;
  pid: number;
  inc?: string;
  /** Set before the harness signals it: its exit is expected. */
  expected: boolean;
  exited: Promise<{ code: number | null; signal: string | null }>;
  exit?: { code: number | null; signal: string | null };
  tail: string[];
  counters: NodeCounters;
}

/** A daemon the harness starts, kills, pauses and restarts. */
export class ChaosDaemon {
  readonly nodeId: string;
  private readonly incarnations: Incarnation[] = [];
  private readonly log: WriteStream;
  private readonly fatal: FatalLine[] = [];
  private paused = false;

  constructor(private readonly opts: DaemonOptions) {
    this.nodeId = opts.nodeId;
    this.log = createWriteStream(join(opts.logDir, `${opts.nodeId}.log`), { flags: "a" });
    this.log.on("error", () => undefined);
  }

  /** The current process, if one was started. */
  private get current(): Incarnation | undefined {
    return this.incarnations.at(-1);
  }

  /** True while the current process runs. */
  get running(): boolean {
    const c = this.current;
    return c !== undefined && c.exit === undefined;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Pid of the current process (-1 when none). */
  get pid(): number {
    return this.current?.pid ?? -1;
  }

  /** Incarnation of the current process, once it said ready. */
  get incarnation(): string | undefined {
    return this.current?.inc;
  }

  /** Starts a new process (a new incarnation) and waits for its ready line. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`daemon ${this.nodeId} is already running`);
    const o = this.opts;
    const bugs = o.injectBugs ?? [];
    const entry = bugs.length > 0 ? [FAULTY_BIN, "--inject-bug", bugs.join(",")] : [FLOCK_BIN];
    const args = [...entry, "daemon", "--nats", o.nats, "--node-id", o.nodeId, "--cluster", o.cluster];
    args.push("--slots", String(o.slots ?? 1), "--metrics-port", String(o.metricsPort));
    const child = spawn(process.execPath, args, {
      env: {
        ...process.env,
        FLOCK_NATS_NO_DISCOVERY: "1",
        FLOCK_LOG_LEVEL: process.env.FLOCK_LOG_LEVEL ?? "info",
        ...o.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    trackProcess(child);
    const counters: NodeCounters = {
      node: o.nodeId,
      pid: child.pid ?? -1,
      scraped: false,
      badInput: {},
      deadLetters: {},
    };
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      child.once("close", (code, signal) => resolve({ code, signal }));
      child.once("error", () => {
        if (child.pid === undefined) resolve({ code: null, signal: null });
      });
    });
    const inc: Incarnation = { child, pid: child.pid ?? -1, expected: false, tail: [], counters, exited };
    void inc.exited.then((e) => {
      inc.exit = e;
      this.write(
        `--- ${o.nodeId} pid ${inc.pid} exited (${e.signal ?? `code ${e.code}`})${inc.expected ? " as the harness asked" : ""} ---`,
      );
    });
    this.incarnations.push(inc);
    this.paused = false;
    this.write(`--- ${o.nodeId}: starting pid ${inc.pid}: ${args.slice(1).join(" ")} ---`);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `daemon ${o.nodeId} printed no ready line in ${o.readyTimeoutMs ?? 60_000} ms:\n${inc.tail.join("\n")}`,
            ),
          ),
        o.readyTimeoutMs ?? 60_000,
      );
      const onLine = (line: string): void => {
        const m = line.match(READY_LINE);
        if (m) {
          inc.inc = m[2];
          clearTimeout(timer);
          resolve();
        }
      };
      this.capture(inc, child.stdout, "out", onLine);
      this.capture(inc, child.stderr, "err", () => undefined);
      void inc.exited.then((e) => {
        clearTimeout(timer);
        reject(
          new Error(
            `daemon ${o.nodeId} exited (${e.signal ?? `code ${e.code}`}) before it was ready:\n${inc.tail.join("\n")}`,
          ),
        );
      });
    });
    await ready;
  }

  /** SIGKILL now (an expected death; scrape first to keep its counters); resolves when it is gone. */
  async kill(): Promise<void> {
    const c = this.current;
    if (!c || c.exit) return;
    c.expected = true;
    c.child.kill("SIGKILL");
    this.paused = false;
    await c.exited;
  }

  /** SIGSTOP: the process freezes (no heartbeats, no replies) until {@link resume}. */
  pause(): void {
    const c = this.current;
    if (!c || c.exit) return;
    c.child.kill("SIGSTOP");
    this.paused = true;
  }

  /** SIGCONT after {@link pause}. */
  resume(): void {
    const c = this.current;
    if (!c || c.exit || !this.paused) return;
    c.child.kill("SIGCONT");
    this.paused = false;
  }

  /** Scrapes the counters, then SIGTERM (after SIGCONT), SIGKILL after `graceMs`. Idempotent. */
  async stop(graceMs = 5000): Promise<void> {
    const c = this.current;
    if (!c || c.exit) return;
    this.resume();
    await this.scrape();
    c.expected = true;
    c.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<"grace">((r) => (timer = setTimeout(() => r("grace"), graceMs)));
    if ((await Promise.race([c.exited, grace])) === "grace") {
      this.write(`--- ${this.nodeId} did not stop in ${graceMs} ms after SIGTERM; SIGKILL ---`);
      c.child.kill("SIGKILL");
    }
    clearTimeout(timer);
    await c.exited;
  }

  /** Reads the current process's bad-input and dead-letter counters (best effort, 1 s deadline). */
  async scrape(): Promise<void> {
    const c = this.current;
    if (!c || c.exit || this.paused) return;
    try {
      const res = await fetch(`http://127.0.0.1:${this.opts.metricsPort}/metrics`, {
        signal: AbortSignal.timeout(1000),
      });
      if (!res.ok) return;
      const text = await res.text();
      c.counters.badInput = parseCounter(text, "flock_bad_input_total");
      c.counters.deadLetters = parseCounter(text, "flock_dead_letters_total");
      c.counters.scraped = true;
    } catch {
      // paused, busy or gone: the last good scrape stands
    }
  }

  /** Counters of every incarnation so far. */
  counters(): NodeCounters[] {
    return this.incarnations.map((i) => ({ ...i.counters }));
  }

  /** Exits the harness did not cause. */
  unexpectedExits(): UnexpectedExit[] {
    return this.incarnations
      .filter((i) => i.exit && !i.expected)
      .map((i) => ({
        name: this.nodeId,
        pid: i.pid,
        code: i.exit!.code,
        signal: i.exit!.signal,
        lastLines: i.tail.slice(-15).join("\n"),
      }));
  }

  /** Crash-class lines seen in any incarnation's output. */
  fatalLines(): FatalLine[] {
    return [...this.fatal];
  }

  /** Closes the log file. */
  async close(): Promise<void> {
    await new Promise<void>((r) => this.log.end(r));
  }

  private capture(
    inc: Incarnation,
    stream: NodeJS.ReadableStream | null,
    tag: string,
    onLine: (line: string) => void,
  ): void {
    if (!stream) return;
    let partial = "";
    stream.setEncoding("utf8");
    const line = (text: string): void => {
      inc.tail.push(text);
      if (inc.tail.length > TAIL_LINES) inc.tail.shift();
      if (FATAL_LINE.test(text)) this.fatal.push({ name: `${this.nodeId}[${inc.pid}]`, line: text });
      this.write(`[${inc.pid} ${tag}] ${text}`);
      onLine(text);
    };
    stream.on("data", (chunk: string) => {
      const parts = (partial + chunk).split(/\r?\n/);
      partial = parts.pop() ?? "";
      for (const p of parts) line(p);
    });
    stream.on("end", () => {
      if (partial) line(partial);
      partial = "";
    });
  }

  private write(text: string): void {
    this.log.write(`${new Date().toISOString()} ${text}\n`);
  }
}

/** Values of one Prometheus counter by its `reason` label. */
export function parseCounter(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = line.match(/^(\w+)(?:\{([^}]*)\})?\s+([0-9.eE+-]+)$/);
    if (!m || m[1] !== name) continue;
    const reason = m[2]?.match(/reason="([^"]*)"/)?.[1] ?? "";
    out[reason] = (out[reason] ?? 0) + Number(m[3]);
  }
  return out;
}
