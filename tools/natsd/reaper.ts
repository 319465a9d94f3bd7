/**
 * Keeps track of every child process the launcher (or the test kit) started and kills what is left
 * when this Node process exits, so no nats-server outlives the test run that started it.
 * @module
 */
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let installed = false;

/**
 * Registers a child to be killed if it is still running when this process exits: SIGKILL on a
 * plain exit; on SIGINT/SIGTERM/SIGHUP (when nobody else handles those signals) the same signal,
 * so that a child with children of its own (`flock chaos` under a test, with its servers and
 * daemons) reaps them in turn instead of leaving them orphaned. Unregisters it on exit.
 */
export function trackProcess(child: ChildProcess): void {
  install();
  live.add(child);
  child.once("exit", () => live.delete(child));
}

/** Registers a temporary directory to be deleted on process exit unless it was released first. */
export function trackTempDir(dir: string): void {
  install();
  tempDirs.add(dir);
}

/** Deletes a tracked temporary directory now and forgets it. */
export function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** Number of tracked children still running (for tests and diagnostics). */
export function liveProcessCount(): number {
  return live.size;
}

function killAllSync(signal: NodeJS.Signals = "SIGKILL"): void {
  for (const child of live) {
    try {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        if (signal !== "SIGKILL") child.kill("SIGCONT"); // a paused child must run to handle it
      }
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }
  tempDirs.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", () => killAllSync());
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    // Without a listener these signals end Node without running 'exit' handlers, which would leak
    // servers; with one, Node no longer dies on them. So when ours is the only listener we clean up
    // and re-raise the signal to keep the default behaviour (the signal-exit pattern). When the
    // application handles the signal itself, it owns the shutdown (its servers stay up for a graceful
    // stop) and the 'exit' handler cleans up whatever is left.
    const onSignal = (): void => {
      if (process.listenerCount(sig) !== 1) return;
      killAllSync(sig);
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}
