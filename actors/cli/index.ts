import type { Command } from "commander";

/** Registers `flock train`, `flock chaos`, `flock bench` and `flock demo`. */
export function registerCommands(_program: Command): void {
  // filled in by the training layer
}
