/**
 * A nats-server running the config `flock auth init` writes: shared by the integration tests that
 * check what the generated roles allow.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { writeAuthFiles } from "../../tools/auth/command.js";
import { startNatsServer, type NatsServerHandle } from "../../tools/natsd/index.js";

/** A running server under the generated roles, and the folder of its auth files. */
export interface AuthServer {
  /** The folder holding `auth.conf` and every role's `.creds` (removed by {@link stop}). */
  dir: string;
  server: NatsServerHandle;
  /** The `.creds` file of `who`: a node id, `submitter` or `observer`. */
  creds(who: string): string;
  /** Stops the server and removes the folder. */
  stop(): Promise<void>;
}

/**
 * Writes the auth files of `cluster` for `nodes` into a fresh temp folder (named from `prefix`)
 * and starts a nats-server with JetStream that includes them.
 */
export async function startAuthServer(cluster: string, nodes: string[], prefix: string): Promise<AuthServer> {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  try {
    writeAuthFiles({ cluster, nodes, out: dir });
    // nats-server resolves an include relative to the including file, which the launcher writes
    // in a fresh directory directly under the temp dir.
    const include = relative(join(tmpdir(), "launcher-dir"), join(dir, "auth.conf"));
    const server = await startNatsServer({
      jetstream: true,
      extraConfig: `include ${JSON.stringify(include)}`,
    });
    return {
      dir,
      server,
      creds: (who) => join(dir, `${who}.creds`),
      stop: async () => {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
