import { CommanderError, InvalidArgumentError, Option, type Command } from "commander";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { natsAuthFromEnv, type NatsOptions } from "../../runtime/transport/index.js";

/** Exit status of a command-line usage error (bad or missing flag), as most Unix tools use. */
export const USAGE_EXIT_CODE = 2;

const USAGE_ERRORS = new Set([
  "commander.unknownOption",
  "commander.invalidArgument",
  "commander.missingArgument",
  "commander.optionMissingArgument",
  "commander.missingMandatoryOptionValue",
  "commander.excessArguments",
  "commander.conflictingOption",
  "commander.unknownCommand",
  "commander.usage",
]);

/** Makes usage errors of `cmd` exit with status 2 (commander's default is 1). */
export function usageErrorsExit2(cmd: Command): Command {
  return cmd.exitOverride((err) => {
    throw USAGE_ERRORS.has(err.code) ? new CommanderError(USAGE_EXIT_CODE, err.code, err.message) : err;
  });
}

/** Parser of an integer flag within [min, max]. */
export function intIn(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got ${n}`);
    return n;
  };
}

/** Parser of a cluster name. */
export function clusterName(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(value))
    throw new InvalidArgumentError(`cluster names use 1-64 letters, digits, _ or -; got "${value}"`);
  return value;
}

/**
 * `--nats` (its default: `NATS_URL`, else the local server; see {@link withNats}) and `--cluster`,
 * the two options of every command that reads or addresses a running cluster.
 */
export function clusterTargetOptions(cmd: Command): Command {
  return cmd
    .option(
      "--nats <urls>",
      "NATS server URL(s), comma-separated (default: env NATS_URL, else nats://127.0.0.1:4222)",
      natsUrls,
    )
    .option("--cluster <name>", "Cluster name", clusterName, "default");
}

/**
 * `flags` with `nats` set: the `--nats` flag, else `NATS_URL`, else `nats://127.0.0.1:4222`; a bad
 * `NATS_URL` is a usage error (exit 2) of `cmd`.
 */
export function withNats<F extends { nats?: string[] }>(cmd: Command, flags: F): F & { nats: string[] } {
  if (!flags.nats) {
    try {
      flags.nats = natsUrls(process.env.NATS_URL || "nats://127.0.0.1:4222");
    } catch (err) {
      cmd.error(`error: NATS_URL: ${(err as Error).message}`, { exitCode: 2, code: "commander.usage" });
    }
  }
  return flags as F & { nats: string[] };
}

/** Parser of comma-separated NATS URLs. */
export function natsUrls(value: string): string[] {
  const urls = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (urls.length === 0) throw new InvalidArgumentError("expected at least one NATS URL");
  for (const url of urls) {
    if (!/^(nats|tls|ws|wss):\/\/[^\s]+$|^[A-Za-z0-9.-]+:\d+$/.test(url))
      throw new InvalidArgumentError(`not a NATS URL: "${url}" (expected nats://host:port)`);
  }
  return urls;
}

/** The credential flags every NATS-using command accepts. */
export function addNatsAuthOptions(cmd: Command): Command {
  return cmd
    .option("--user <user>", "NATS user (env NATS_USER)")
    .option(
      "--pass <password>",
      "NATS password (env NATS_PASS; visible in process listings: prefer --pass-file)",
    )
    .option("--pass-file <file>", "File holding the NATS password (env NATS_PASS_FILE)")
    .option("--token <token>", "NATS token (env NATS_TOKEN; prefer --token-file)")
    .option("--token-file <file>", "File holding the NATS token (env NATS_TOKEN_FILE)")
    .option("--nkey-seed <seed>", "NATS nkey seed (env NATS_NKEY_SEED; prefer --nkey-seed-file)")
    .option("--nkey-seed-file <file>", "File holding the NATS nkey seed (env NATS_NKEY_SEED_FILE)")
    .option("--creds <file>", "NATS .creds file (env NATS_CREDS)")
    .option("--tls-ca <file>", "TLS CA file (env NATS_TLS_CA)")
    .option("--tls-cert <file>", "TLS client certificate (env NATS_TLS_CERT)")
    .option("--tls-key <file>", "TLS client key (env NATS_TLS_KEY)");
}

/** Parsed credential flags. */
export interface NatsAuthFlags {
  user?: string;
  pass?: string;
  passFile?: string;
  token?: string;
  tokenFile?: string;
  nkeySeed?: string;
  nkeySeedFile?: string;
  creds?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/**
 * NATS options from the environment, overridden by flags. A secret may come from a file
 * (`--pass-file`, `--token-file`, `--nkey-seed-file`, or the `NATS_*_FILE` variables), so that
 * none need appear in a process listing; a flag given inline wins over its file.
 */
export function natsOptions(
  servers: string[],
  flags: NatsAuthFlags,
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): NatsOptions {
  const o: NatsOptions = { ...natsAuthFromEnv(env), servers, name };
  if (flags.user !== undefined) o.user = flags.user;
  const pass = flags.pass ?? secretFile(flags.passFile ?? env.NATS_PASS_FILE, "password");
  if (pass !== undefined) o.pass = pass;
  const token = flags.token ?? secretFile(flags.tokenFile ?? env.NATS_TOKEN_FILE, "token");
  if (token !== undefined) o.token = token;
  const seed = flags.nkeySeed ?? secretFile(flags.nkeySeedFile ?? env.NATS_NKEY_SEED_FILE, "nkey seed");
  if (seed !== undefined) o.nkeySeed = seed;
  if (flags.creds !== undefined) o.credsFile = flags.creds;
  if (flags.tlsCa || flags.tlsCert || flags.tlsKey)
    o.tls = {
      ...o.tls,
      caFile: flags.tlsCa ?? o.tls?.caFile,
      certFile: flags.tlsCert ?? o.tls?.certFile,
      keyFile: flags.tlsKey ?? o.tls?.keyFile,
    };
  return o;
}

/** Reads one secret from a file (trailing newline dropped); undefined when no file is named. */
export function secretFile(path: string | undefined, what: string): string | undefined {
  if (!path) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    // The message names the file, never its content.
    throw new InvalidArgumentError(
      `cannot read the ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
    );
  }
  const secret = text.replace(/\r?\n$/, "");
  if (!secret) throw new InvalidArgumentError(`the ${what} file ${path} is empty`);
  return secret;
}

/** The `--log-level` flag. */
export function logLevelOption(): Option {
  return new Option(
    "--log-level <level>",
    "Log level of the JSON logs on stderr (env FLOCK_LOG_LEVEL)",
  ).choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
}

/**
 * Default node id: this host's name, reduced to node-id characters (a node id is one NATS subject
 * token, so the dots of a fully qualified name become `-`).
 */
export function defaultNodeId(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9_$:-]/g, "-")
      .slice(0, 64) || "node"
  );
}
