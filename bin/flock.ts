#!/usr/bin/env node
/**
 * The composition root: wires the runtime, the training actors and the CLI commands together.
 * Imports run one way (tools → actors → runtime → messages); only this file sees all of them.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerCommands, registerRuntimeCommands } from "../tools/cli/index.js";
import { setupNode } from "../actors/kinds.js";

// dist/bin/flock.js → the package's package.json, two folders up.
const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

const program = new Command()
  .name("flock")
  .description("Actor-model runtime for elastic, fault-tolerant data-parallel training over NATS")
  .version(version, "-V, --version", "Print the version")
  .helpOption("-h, --help", "Show help for a command")
  .helpCommand("help [command]", "Show help for a command")
  .showHelpAfterError()
  .exitOverride();

registerRuntimeCommands(program, {
  setupNode: (node, { jobRetentionMs, dataCacheBytes }) =>
    setupNode(node, { jobRetentionMs, dataCacheBytes }),
});
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  console.error(`flock: ${(error as Error).message}`);
  process.exit(1);
}
