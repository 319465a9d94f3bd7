#!/usr/bin/env node
/**
 * A test entry point, not shipped as `flock`: the same `daemon` command as `bin/flock.ts`, with
 * deliberate bugs built into the actors it hosts. The chaos harness starts its daemons with this
 * file when asked `flock chaos --inject-bug NAME`, to prove its invariants catch a broken build:
 *
 *   node dist/tools/chaos/faulty-daemon.js --inject-bug reducer-keeps-dead-slices daemon --nats URL …
 *
 * The production composition root has no such option and reads no environment variable for it.
 * @module
 */
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { setupNode } from "../../actors/kinds.js";
import { registerDaemonCommand } from "../cli/daemon.js";
import { faultsFor, INJECTABLE_BUGS, parseInjectableBugs, type InjectableBug } from "./bugs.js";

const program = new Command()
  .name("flock-faulty-daemon")
  .description("flock daemon with deliberate bugs, for the chaos harness's own tests (never for training)")
  .requiredOption(
    "--inject-bug <names>",
    `bugs to build in, comma-separated (${INJECTABLE_BUGS.join(", ")})`,
    (value: string): InjectableBug[] => {
      try {
        return parseInjectableBugs(value);
      } catch (error) {
        throw new InvalidArgumentError((error as Error).message);
      }
    },
  )
  .showHelpAfterError()
  .exitOverride();

let announced = false;
registerDaemonCommand(program, (node) => {
  const bugs = program.opts<{ injectBug: InjectableBug[] }>().injectBug;
  if (!announced) process.stderr.write(`flock-faulty-daemon: built-in bugs: ${bugs.join(", ")}\n`);
  announced = true;
  // The node is a FlockNode: the same structural cast as the production root (bin/flock.ts).
  setupNode(node, { faults: faultsFor(bugs) });
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  console.error(`flock-faulty-daemon: ${(error as Error).message}`);
  process.exit(1);
}
