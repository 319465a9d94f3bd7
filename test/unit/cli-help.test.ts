/**
 * The CLI's help speaks in one voice: every command, option and argument description starts with a
 * capital letter and ends without a period (as git's and npm's do). Walks the whole commander
 * program as `bin/flock.ts` builds it, and checks `flock --version`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { registerCommands, registerRuntimeCommands } from "../../tools/cli/index.js";

const FLOCK = fileURLToPath(new URL("../../bin/flock.js", import.meta.url));

function program(): Command {
  const p = new Command().name("flock");
  registerRuntimeCommands(p, { setupNode: () => undefined });
  registerCommands(p);
  return p;
}

/** Every description in the program, named by where it is. */
function descriptions(cmd: Command, path = cmd.name()): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (path !== "flock") out.push([path, cmd.description()]);
  for (const o of cmd.options) out.push([`${path} ${o.flags}`, o.description]);
  for (const a of cmd.registeredArguments) out.push([`${path} <${a.name()}>`, a.description]);
  for (const sub of cmd.commands) out.push(...descriptions(sub, `${path} ${sub.name()}`));
  return out;
}

test("every command, option and argument has a description: capitalised, without a trailing period", () => {
  const all = descriptions(program());
  assert.ok(all.length > 80, `walked ${all.length} descriptions`);
  const bad = all.filter(([, d]) => !/^[A-Z0-9`"(]/.test(d) || /\.$/.test(d) || d.trim() !== d);
  assert.deepEqual(
    bad.map(([where, d]) => `${where}: ${JSON.stringify(d)}`),
    [],
  );
});

test("flock --version prints the package's version", () => {
  const { version } = JSON.parse(
    readFileSync(fileURLToPath(new URL("../../../package.json", import.meta.url)), "utf8"),
  ) as { version: string };
  const run = spawnSync(process.execPath, [FLOCK, "--version"], { encoding: "utf8", timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), version);
});
