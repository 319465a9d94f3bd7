import type { Command } from "commander";
import type { FlockNode } from "../../runtime/daemon/node.js";
import { registerDaemonCommand, type DaemonSetupOptions } from "./daemon.js";
import { registerStatusCommand } from "./status.js";
import { registerTrainCommand } from "./train.js";
import { registerJobsCommands } from "./jobs.js";
import { registerDataCommands } from "./data.js";
import { registerExportCommand } from "./export.js";
import { registerPredictCommand } from "./predict.js";
import { registerDemoCommand } from "../demo/command.js";
import { registerBenchCommand } from "../bench/command.js";
import { registerChaosCommand } from "../chaos/command.js";
import { registerAuthCommand } from "../auth/command.js";
import { registerDashboardCommand } from "./dashboard.js";
export { readClusterStatus, formatStatus, type ClusterStatus, type StatusNode } from "./status.js";
export { USAGE_EXIT_CODE } from "./options.js";
export { formatJobs, type JobsListing } from "./jobs.js";

/** What the composition root hands the runtime's commands. */
export interface RuntimeCommandDeps {
  /**
   * Registers the actor kinds a daemon hosts (the training actors); the runtime never imports actors/.
   * Called with each new actor system of the node: at start and after every rejoin.
   */
  setupNode: (node: FlockNode, opts: DaemonSetupOptions) => void | Promise<void>;
}

/**
 * Registers `flock daemon` and `flock status`. Usage errors (unknown or bad flags) exit with
 * status 2; runtime failures (NATS unreachable, node id in use) with 1.
 */
export function registerRuntimeCommands(program: Command, deps: RuntimeCommandDeps): void {
  registerDaemonCommand(program, deps.setupNode);
  registerStatusCommand(program);
}

/** Registers `flock train`, `flock jobs`, `flock job`, `flock chaos`, `flock bench`, `flock demo`, `flock auth` and `flock dashboard`. */
export function registerCommands(program: Command): void {
  registerTrainCommand(program);
  registerJobsCommands(program);
  registerDataCommands(program);
  registerExportCommand(program);
  registerPredictCommand(program);
  registerAuthCommand(program);
  registerDemoCommand(program);
  registerBenchCommand(program);
  registerChaosCommand(program);
  registerDashboardCommand(program);
}
