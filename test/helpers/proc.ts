/**
 * Child processes for tests (daemons, CLIs): line-oriented output capture, `waitForLine` with
 * timeouts that grow under CI, and errors whose stack points at the test line that waited.
 * @module
 */
import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { trackProcess, type ProcessExit } from "../../tools/natsd/index.js";
import { scaleTimeout } from "./timeouts.js";

/** Options of {@link spawnChild}. */
export interface SpawnChildOptions {
  /** Extra environment, merged over `process.env`. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Label used in error messages (default: the command). */
  name?: string;
  /** Time between SIGTERM and SIGKILL in `stop()` (default 3000 ms). */
  stopGraceMs?: number;
  /** Lines of output kept (default 20 000); older ones are dropped. */
  maxLines?: number;
  /**
   * Run the child in its own process group and signal the whole group (for programs that fork
   * helpers, such as Chromium), so no grandchild outlives the test.
   */
  processGroup?: boolean;
}

/** A spawned child process with captured output. */
export interface ChildHandle extends AsyncDisposable {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly name: string;
  /**
   * Resolves with the match of the first line (stdout or stderr) matching `pattern` that no earlier
   * `waitForLine` call has consumed: lines already printed count, and successive calls move forward
   * (a match consumes its line and every line before it, so wait for lines in the order printed).
   * Rejects, with the captured output in the message, on timeout (default 10 000 ms, ×3 under CI)
   * or when the process exits first.
   */
  waitForLine(pattern: RegExp | string, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Everything captured so far (stdout and stderr lines, interleaved in arrival order). */
  output(): string;
  /** What the child wrote to stdout alone, complete (not bounded by `maxLines`). */
  stdout(): string;
  /** Sends a signal (default SIGTERM) if the child is still running. */
  kill(signal?: NodeJS.Signals): void;
  /** Settles (never rejects) when the child exits or fails to spawn. */
  readonly exited: Promise<ProcessExit>;
  /** SIGTERM, then SIGKILL after the grace; resolves with how it exited. */
  stop(graceMs?: number): Promise<ProcessExit>;
}

/** Something a test must release: a function, an object with `stop()`, or an AsyncDisposable. */
export type Cleanup = (() => unknown) | { stop(): unknown } | AsyncDisposable;

/** The part of node:test's `TestContext` that {@link registerCleanup} needs. */
export interface HasAfter {
  after(fn: () => unknown): void;
}

/**
 * Registers `resource` to be released in `t.after`. Call it right after each spawn/start, never at
 * the end of a test body, where a failed assertion would skip it and leak the process.
 * @returns the resource, for chaining: `const d = registerCleanup(t, spawnChild(...))`.
 */
export function registerCleanup<R extends Cleanup>(t: HasAfter, resource: R): R {
  t.after(async () => {
    if (typeof resource === "function") await resource();
    else if ("stop" in resource) await resource.stop();
    else await resource[Symbol.asyncDispose]();
  });
  return resource;
}

interface Waiter {
  re: RegExp;
  resolve: (m: RegExpMatchArray) => void;
  fail: (why: string) => void;
}

/** Spawns `cmd args` with piped output; the child is SIGKILLed if still alive when this process exits. */
export function spawnChild(
  cmd: string,
  args: readonly string[] = [],
  options: SpawnChildOptions = {},
): ChildHandle {
  const child = spawn(cmd, [...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.processGroup === true,
  });
  trackProcess(child);
  return new Child(child, options.name ?? [cmd, ...args].join(" "), options);
}

class Child implements ChildHandle {
  readonly exited: Promise<ProcessExit>;
  private readonly lines: string[] = [];
  private out = "";
  private dropped = 0;
  private cursor = 0;
  private waiters = new Set<Waiter>();
  private exit: ProcessExit | undefined;

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
    private readonly options: SpawnChildOptions,
  ) {
    child.stdout?.on("data", (chunk: string) => (this.out += chunk));
    this.capture(child.stdout);
    this.capture(child.stderr);
    this.exited = new Promise((resolve) => {
      // 'close' comes after both pipes ended, so every line is captured before waiters are failed.
      child.once("close", (code, signal) => resolve({ code, signal }));
      child.once("error", (error) => {
        if (child.pid === undefined) resolve({ code: null, signal: null, error });
      });
    });
    void this.exited.then((e) => {
      this.exit = e;
      for (const w of this.waiters) w.fail(`exited (${describe(e)})`);
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  output(): string {
    return (this.dropped ? `[… ${this.dropped} earlier lines dropped]\n` : "") + this.lines.join("\n");
  }

  stdout(): string {
    return this.out;
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (!this.options.processGroup || this.child.pid === undefined) return void this.child.kill(signal);
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // The group is already gone.
    }
  }

  async stop(graceMs = this.options.stopGraceMs ?? 3000): Promise<ProcessExit> {
    if (this.exit) return this.exit;
    this.kill("SIGTERM");
    const ac = new AbortController();
    const grace = sleep(graceMs, "grace", { signal: ac.signal }).catch(() => "aborted");
    if ((await Promise.race([this.exited, grace])) === "grace") this.kill("SIGKILL");
    ac.abort();
    return this.exited;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop().then(() => undefined);
  }

  waitForLine(pattern: RegExp | string, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const callSite = new Error();
    Error.captureStackTrace(callSite, this.waitForLine);
    const re = typeof pattern === "string" ? new RegExp(escapeRegExp(pattern)) : pattern;
    const limit = scaleTimeout(timeoutMs);
    return new Promise((resolve, reject) => {
      const found = this.scan(re);
      if (found) return resolve(found);
      // The callback runs after `waiter` below is initialised (at least `limit` ms from now).
      const timer = setTimeout(() => waiter.fail(`timed out after ${limit} ms`), limit);
      const waiter: Waiter = {
        re,
        resolve: (m) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(m);
        },
        fail: (why) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          callSite.message = `${this.name}: ${why} before printing a line matching ${re}\n--- output ---\n${this.output().slice(-8000)}`;
          callSite.name = "WaitForLineError";
          reject(callSite);
        },
      };
      if (this.exit) return waiter.fail(`exited (${describe(this.exit)})`);
      this.waiters.add(waiter);
    });
  }

  /** Finds the first unconsumed line matching `re`, consuming it and everything before it. */
  private scan(re: RegExp): RegExpMatchArray | undefined {
    for (let abs = Math.max(this.cursor, this.dropped); abs < this.dropped + this.lines.length; abs++) {
      const m = this.lines[abs - this.dropped]!.match(re);
      if (m) {
        this.cursor = abs + 1;
        return m;
      }
    }
    return undefined;
  }

  private onLine(line: string): void {
    this.lines.push(line);
    const max = this.options.maxLines ?? 20_000;
    if (this.lines.length > max) this.dropped += this.lines.splice(0, this.lines.length - max).length;
    for (const w of [...this.waiters]) {
      const m = this.scan(w.re);
      if (m) w.resolve(m);
    }
  }

  private capture(stream: NodeJS.ReadableStream | null): void {
    if (!stream) return;
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const parts = (partial + chunk).split(/\r?\n/);
      partial = parts.pop() ?? "";
      for (const line of parts) this.onLine(line);
    });
    stream.on("end", () => {
      if (partial) this.onLine(partial);
      partial = "";
    });
  }
}

function describe(e: ProcessExit): string {
  if (e.error) return `spawn failed: ${e.error.message}`;
  return e.signal ? `signal ${e.signal}` : `code ${e.code}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
