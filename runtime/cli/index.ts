import type { Command } from "commander";

/** What the composition root hands the runtime's commands. */
export interface RuntimeCommandDeps {
  /** Registers the actor kinds a daemon hosts (the training actors); runtime/ never imports actors/. */
  setupNode: (node: unknown) => void | Promise<void>;
}

/** Registers `flock daemon` and `flock status`. */
export function registerRuntimeCommands(_program: Command, _deps: RuntimeCommandDeps): void {
  // filled in by the cluster layer
}
