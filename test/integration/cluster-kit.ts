/**
 * Shared by the cluster integration tests: daemons as child processes, `flock status`, and a direct
 * reader of the cluster view (fast polling without spawning a process per poll).
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "nats";
import { readClusterStatus, type ClusterStatus } from "../../tools/cli/index.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import {
  registerCleanup,
  scaleTimeout,
  spawnChild,
  type ChildHandle,
  type HasAfter,
} from "../helpers/index.js";

/** The compiled CLI. */
export const FLOCK = fileURLToPath(new URL("../../bin/flock.js", import.meta.url));

/**
 * Waits for a child's exit and returns its exit code; past `limitMs` it stops the child and fails
 * the test with the child's output.
 */
export async function exitWithin(child: ChildHandle, limitMs: number): Promise<number | null> {
  const exit = await Promise.race([
    child.exited,
    new Promise<"timeout">((r) => setTimeout(() => r("timeout"), limitMs).unref()),
  ]);
  if (exit === "timeout") {
    await child.stop(0);
    assert.fail(`${child.name} did not end within ${limitMs} ms:\n${child.output()}`);
  }
  return exit.code;
}

/** A running daemon. */
export interface Daemon {
  id: string;
  inc: string;
  proc: ChildHandle;
}

/** Every daemon started in this process, for failure reports. */
export const startedDaemons: Daemon[] = [];

/** Starts `flock daemon` and waits for its ready line; cleanup is registered right after the spawn. */
export async function startDaemon(
  t: HasAfter,
  urls: readonly string[],
  cluster: string,
  id: string,
  extra: string[] = [],
): Promise<Daemon> {
  const proc = registerCleanup(
    t,
    spawnChild(
      process.execPath,
      [FLOCK, "daemon", "--nats", urls.join(","), "--node-id", id, "--cluster", cluster, ...extra],
      { name: `daemon ${id}` },
    ),
  );
  const daemon: Daemon = { id, inc: "?", proc };
  startedDaemons.push(daemon);
  const m = await proc.waitForLine(
    new RegExp(`^flock daemon ${id} ready \\(incarnation (\\S+), cluster ${cluster}\\)$`),
    scaleTimeout(20_000),
  );
  daemon.inc = m[1]!;
  return daemon;
}

/**
 * Starts `flock train SOURCE --nats URL --cluster C ...extra --json --no-report` (stopped after
 * the test whatever happens) and returns it with the job id it announces.
 */
export async function startTrain(
  t: HasAfter,
  url: string,
  cluster: string,
  source: string,
  extra: string[] = [],
): Promise<{ proc: ChildHandle; job: string }> {
  const proc = registerCleanup(
    t,
    spawnChild(
      process.execPath,
      [FLOCK, "train", source, "--nats", url, "--cluster", cluster, ...extra, "--json", "--no-report"],
      { name: "flock train" },
    ),
  );
  const m = await proc.waitForLine(/\(job (\S+)\)/, scaleTimeout(20_000));
  return { proc, job: m[1]! };
}

/** Runs `flock status --json` once and parses its output. */
export async function statusCli(urls: readonly string[], cluster: string): Promise<ClusterStatus> {
  const child = spawnChild(
    process.execPath,
    [FLOCK, "status", "--nats", urls.join(","), "--cluster", cluster, "--json"],
    { name: "flock status" },
  );
  const limit = scaleTimeout(15_000);
  const exit = await Promise.race([child.exited, sleep(limit, "timeout" as const, { ref: false })]);
  if (exit === "timeout") await child.stop(0);
  if (exit === "timeout" || exit.code !== 0)
    throw new Error(
      `flock status failed (${exit === "timeout" ? `timed out after ${limit} ms` : `exit ${exit.code ?? exit.signal}`}):\n${child.output()}`,
    );
  const last = child.stdout().trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(last) as ClusterStatus;
  } catch (e) {
    throw new Error(`flock status printed no JSON: ${(e as Error).message}\n${child.output()}`, { cause: e });
  }
}

/** A NATS client reading the cluster view directly, for polls every few ms. */
export async function viewReader(
  t: HasAfter,
  urls: readonly string[],
  cluster: string,
): Promise<() => Promise<ClusterStatus>> {
  const nc: NatsConnection = await connect({
    servers: [...urls],
    reconnectTimeWait: 100,
    maxReconnectAttempts: -1,
  });
  registerCleanup(t, () => nc.close());
  const stores = new JetStreamStores(nc, { cluster, timeoutMs: 1000 });
  return () => readClusterStatus(stores, cluster);
}

/** The node's entry in a status, asserted present. */
export function nodeOf(s: ClusterStatus, id: string): ClusterStatus["nodes"][number] {
  const n = s.nodes.find((x) => x.id === id);
  assert.ok(n, `node ${id} in ${JSON.stringify(s.nodes.map((x) => `${x.id}:${x.state}`))}`);
  return n;
}

/** Whether every listed daemon is alive in the status with the given incarnation. */
export function allAlive(s: ClusterStatus, daemons: readonly Daemon[]): boolean {
  return daemons.every((d) =>
    s.nodes.some((n) => n.id === d.id && n.state === "alive" && n.incarnation === d.inc),
  );
}

/** Membership events of a kind that a daemon logged, as `member:inc`. */
export function loggedEvents(d: Daemon, kind: string): string[] {
  const out: string[] = [];
  for (const line of d.proc.output().split("\n")) {
    if (!line.includes(`"event":"${kind}"`)) continue;
    try {
      const rec = JSON.parse(line) as { member: string; inc: string };
      out.push(`${rec.member}:${rec.inc}`);
    } catch {
      // not a log record
    }
  }
  return out;
}

/** Lines a daemon logged that match `re`. */
export function loggedLines(d: Daemon, re: RegExp): string[] {
  return d.proc
    .output()
    .split("\n")
    .filter((l) => re.test(l));
}

/** The warnings and errors each daemon logged (its last `max` ones), for failure reports. */
export function daemonWarnings(ds: readonly Daemon[], max = 40): string {
  return ds
    .map((d) => {
      const lines = d.proc
        .output()
        .split("\n")
        .filter((l) => /"level":(4|5|6)0|monitor|lease/.test(l) || !l.startsWith("{"));
      return `--- daemon ${d.id} (incarnation ${d.inc}) ---\n${lines
        .slice(-max)
        .map((l) => l.slice(0, 400))
        .join("\n")}`;
    })
    .join("\n");
}

/** A finished `flock` command: its exit code and output. */
export interface FlockRun {
  code: number | null;
  /** stdout and stderr together. */
  out: string;
  stdout: string;
}

/** Runs `flock ...args` to its end (registered for cleanup, bounded by `limitMs`, scaled). */
export async function runFlock(t: HasAfter, args: string[], limitMs = 60_000): Promise<FlockRun> {
  const child = registerCleanup(
    t,
    spawnChild(process.execPath, [FLOCK, ...args], { name: `flock ${args[0]} ${args[1]}` }),
  );
  const code = await exitWithin(child, scaleTimeout(limitMs));
  return { code, out: child.output(), stdout: child.stdout() };
}

/** The last line of a command's stdout, parsed as JSON (the `--json` contract). */
export function lastJsonLine<T>(stdout: string): T {
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1] ?? "") as T;
}
