import { InvalidArgumentError, type Command } from "commander";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nkeys } from "nats";
import { isValidNodeId } from "../../runtime/actor/subjects.js";
import { clusterName, usageErrorsExit2 } from "../cli/options.js";
import { formatAccounts, formatServerConf, formatUserCreds, planAuth, type UserKeys } from "./config.js";
import { defaultLeaseTtls } from "./permissions.js";

interface AuthInitFlags {
  cluster: string;
  nodes: string[];
  out: string;
  deadAfterMs?: number;
  force?: boolean;
}

/** The slice of nkeys.js (bundled by `nats`, typed `any` there) this command uses. */
interface NkeysApi {
  createUser(): { getPublicKey(): string; getSeed(): Uint8Array };
}

/** A fresh user nkey pair. */
export function newUserKeys(): UserKeys {
  const kp = (nkeys as NkeysApi).createUser();
  return { publicKey: kp.getPublicKey(), seed: new TextDecoder().decode(kp.getSeed()) };
}

function nodeList(value: string): string[] {
  const nodes = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (nodes.length === 0) throw new InvalidArgumentError("expected at least one node id");
  for (const n of nodes) {
    if (!isValidNodeId(n))
      throw new InvalidArgumentError(`node ids use 1-128 letters, digits, _ $ : -; got "${n}"`);
    if (n === "submitter" || n === "observer")
      throw new InvalidArgumentError(`"${n}" is a reserved identity`);
  }
  if (new Set(nodes).size !== nodes.length) throw new InvalidArgumentError("node ids must be distinct");
  return nodes;
}

/** Writes the server config, its accounts include and every user's credentials (mode 0600) into `dir`. */
export function writeAuthFiles(o: {
  cluster: string;
  nodes: string[];
  out: string;
  deadAfterMs?: number;
  overwrite?: boolean;
}): string[] {
  const plan = planAuth({
    cluster: o.cluster,
    nodes: o.nodes,
    leaseTtls: defaultLeaseTtls(o.deadAfterMs),
    keys: newUserKeys,
  });
  mkdirSync(o.out, { recursive: true, mode: 0o700 });
  const flag = o.overwrite ? "w" : "wx"; // never overwrite keys by accident
  const written: string[] = [];
  const write = (name: string, text: string): void => {
    const path = join(o.out, name);
    writeFileSync(path, text, { mode: 0o600, flag });
    chmodSync(path, 0o600); // the mode of writeFileSync applies only to a new file
    written.push(path);
  };
  write("auth.conf", formatAccounts(plan));
  write("server.conf", formatServerConf(plan));
  for (const u of plan.users) write(`${u.identity}.creds`, formatUserCreds(plan, u));
  return written;
}

/** Registers `flock auth init`. */
export function registerAuthCommand(program: Command): void {
  const auth = program.command("auth").description("Credentials and NATS permissions of a secured cluster");
  const init = auth
    .command("init")
    .description("Write a nats-server config with one nkey user per node, a submitter and an observer")
    .requiredOption("--cluster <name>", "Cluster name", clusterName)
    .requiredOption("--nodes <ids>", "Daemon node ids, comma-separated", nodeList)
    .requiredOption("--out <dir>", "Directory for server.conf, auth.conf and the .creds files")
    .option(
      "--dead-after-ms <ms>",
      "The daemons' --dead-after-ms, if not the default (lease bucket names depend on it)",
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 50)
          throw new InvalidArgumentError(`expected an integer ≥ 50, got "${v}"`);
        return n;
      },
    )
    .option("--force", "Overwrite existing files");
  usageErrorsExit2(init);
  init.action((flags: AuthInitFlags) => {
    const files = writeAuthFiles({ ...flags, overwrite: flags.force ?? false });
    process.stdout.write(
      `wrote ${files.length} files to ${flags.out} (keep the .creds files secret; mode 0600):\n${files.map((f) => `  ${f}`).join("\n")}\n` +
        `start the server: nats-server -c ${join(flags.out, "server.conf")} -p 4222 -sd <store dir>\n`,
    );
  });
}
