import type { Command } from "commander";
import { registerTrainCommand } from "./train.js";
import { registerDemoCommand } from "../demo/command.js";
import { registerBenchCommand } from "../bench/command.js";
import { registerChaosCommand } from "../chaos/command.js";

/** Registers `flock train`, `flock chaos`, `flock bench` and `flock demo`. */
export function registerCommands(program: Command): void {
  registerTrainCommand(program);
  registerDemoCommand(program);
  registerBenchCommand(program);
  registerChaosCommand(program);
}
