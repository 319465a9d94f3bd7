import { spawn, type ChildProcess } from "node:child_process";
import { trackProcess } from "../natsd/index.js";

/** A child process of the benchmark (the peer, a daemon), its output kept line by line. */
export class BenchChild {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  private readonly lines: string[] = [];
  private waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  private scanned = 0;

  private constructor(
    readonly name: string,
    cmd: string,
    args: string[],
  ) {
    this.child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: process.env });
    trackProcess(this.child);
    this.exited = new Promise((r) => this.child.once("close", () => r()));
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let partial = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        const parts = (partial + chunk).split(/\r?\n/);
        partial = parts.pop() ?? "";
        for (const line of parts) this.onLine(line);
      });
    }
    this.child.stdin?.on("error", () => undefined);
  }

  /** Starts `node <script> ...args`. */
  static node(name: string, script: string, args: string[], nodeArgs: string[] = []): BenchChild {
    return new BenchChild(name, process.execPath, [...nodeArgs, script, ...args]);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first line (from now on, or already printed after the last match) matching `re`. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const found = this.scan(re);
      if (found) return resolve(found);
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `${this.name}: no line matching ${re} within ${timeoutMs} ms\n${this.lines.slice(-40).join("\n")}`,
          ),
        );
      }, timeoutMs);
      const onExit = () => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited before printing ${re}\n${this.lines.slice(-40).join("\n")}`));
      };
      void this.exited.then(onExit);
      const waiter = {
        re,
        resolve: (m: RegExpMatchArray) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Recent output, for error messages. */
  tail(n = 40): string {
    return this.lines.slice(-n).join("\n");
  }

  /** SIGKILL, no goodbye. */
  kill(): void {
    if (this.running) this.child.kill("SIGKILL");
  }

  /** Closes stdin and sends SIGTERM; SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.child.stdin?.end();
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private scan(re: RegExp): RegExpMatchArray | undefined {
    for (; this.scanned < this.lines.length; this.scanned++) {
      const m = this.lines[this.scanned]!.match(re);
      if (m) {
        this.scanned++;
        return m;
      }
    }
    return undefined;
  }

  private onLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 5000) {
      const drop = this.lines.length - 4000;
      this.lines.splice(0, drop);
      this.scanned = Math.max(0, this.scanned - drop);
    }
    for (const w of [...this.waiters]) {
      const m = line.match(w.re);
      if (m) {
        this.waiters = this.waiters.filter((x) => x !== w);
        this.scanned = this.lines.length;
        w.resolve(m);
      }
    }
  }
}
