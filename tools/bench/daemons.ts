import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { BenchChild } from "./child.js";

/** Reads a process's resident set and its peak, in MiB: /proc on Linux, `ps` elsewhere (no peak there); undefined once it is gone. */
function readRss(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
  } catch {
    try {
      const kb = Number(
        execFileSync("ps", ["-o", "rss=", "-p", String(pid)], { encoding: "utf8", timeout: 2000 }).trim(),
      );
      return Number.isFinite(kb) && kb > 0 ? { rss: kb / 1024, hwm: Number.NaN } : undefined;
    } catch {
      return undefined;
    }
  }
}

/**
 * Flock daemons as child processes (`flock daemon`), one per node id, that the benchmark can
 * SIGKILL and restart; their resident memory is sampled every 200 ms and its peak kept per node.
 */
export class Daemons implements AsyncDisposable {
  private readonly procs = new Map<string, BenchChild>();
  private readonly peak = new Map<string, number>();
  private readonly sampler: NodeJS.Timeout;

  constructor(
    private readonly flockBin: string,
    private readonly url: string,
    private readonly cluster: string,
  ) {
    this.sampler = setInterval(() => this.sample(), 200);
    this.sampler.unref();
  }

  /** Starts (or restarts, as a new incarnation) a daemon and waits for its ready line. */
  async start(nodeId: string, timeoutMs = 30_000): Promise<void> {
    const args = [
      "daemon",
      "--nats",
      this.url,
      "--node-id",
      nodeId,
      "--cluster",
      this.cluster,
      "--log-level",
      "warn",
    ];
    // FLOCK_BENCH_DAEMON_ARGS passes node flags to the daemons, e.g. "--cpu-prof --cpu-prof-dir=prof".
    const nodeArgs = (process.env.FLOCK_BENCH_DAEMON_ARGS ?? "").split(" ").filter(Boolean);
    const child = BenchChild.node(`daemon ${nodeId}`, this.flockBin, args, nodeArgs);
    this.procs.set(nodeId, child);
    await child.waitForLine(/flock daemon \S+ ready/, timeoutMs);
  }

  /** SIGKILLs a daemon (no goodbye) and waits for it to be gone. */
  async kill(nodeId: string): Promise<void> {
    const child = this.procs.get(nodeId);
    if (!child) throw new Error(`no daemon ${nodeId}`);
    this.sampleOne(nodeId, child);
    child.kill();
    await child.exited;
  }

  /** Peak resident memory of each node's daemons so far, in MiB (the largest over its restarts). */
  peakRssMB(): Record<string, number> {
    this.sample();
    return Object.fromEntries([...this.peak].sort());
  }

  /** The last lines each daemon printed (the current process of each node), for error messages. */
  tails(lines = 15): string {
    return [...this.procs]
      .map(([id, c]) => `--- daemon ${id} (pid ${c.pid}) ---\n${c.tail(lines)}`)
      .join("\n");
  }

  /** Stops every daemon (SIGTERM, then SIGKILL). */
  async stop(): Promise<void> {
    this.sample();
    clearInterval(this.sampler);
    await Promise.all([...this.procs.values()].map((c) => c.stop(5000)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private sample(): void {
    for (const [id, child] of this.procs) this.sampleOne(id, child);
  }

  private sampleOne(id: string, child: BenchChild): void {
    if (!child.running) return;
    const m = readRss(child.pid);
    if (!m) return;
    const top = Math.max(m.rss, Number.isFinite(m.hwm) ? m.hwm : 0);
    if (top > (this.peak.get(id) ?? 0)) this.peak.set(id, top);
  }
}
