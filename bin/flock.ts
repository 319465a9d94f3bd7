#!/usr/bin/env node
/**
 * The composition root: wires the runtime, the training actors and the CLI commands together.
 * Imports run one way (tools → actors → runtime → messages); only this file sees all of them.
 */
import { Command, CommanderError } from "commander";
import { registerCommands, registerRuntimeCommands } from "../tools/cli/index.js";
import { setupNode } from "../actors/kinds.js";

const program = new Command()
  .name("flock")
  .description("Actor-model runtime for elastic, fault-tolerant data-parallel training over NATS")
  .showHelpAfterError()
  .exitOverride();

registerRuntimeCommands(program, {
  setupNode: (node, { jobRetentionMs }) => setupNode(node, { jobRetentionMs }),
});
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  console.error(`flock: ${(error as Error).message}`);
  process.exit(1);
}
