/**
 * Finds the nats-server binary.
 * @module
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { NatsServerNotFoundError } from "./errors.js";

const WELL_KNOWN = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];

/**
 * Resolves the nats-server executable: an explicit path, else `$NATS_SERVER_BIN`, else `nats-server`
 * on `$PATH`, else the usual install locations (Debian puts it in /usr/sbin, often not on a user's PATH).
 * @throws NatsServerNotFoundError with install instructions when none is executable.
 */
export function findNatsServerBinary(explicit?: string): string {
  const candidates: string[] = [];
  if (explicit) candidates.push(explicit);
  else {
    const fromEnv = process.env["NATS_SERVER_BIN"];
    if (fromEnv) candidates.push(fromEnv);
    for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
      if (dir) candidates.push(join(dir, "nats-server"));
    }
    candidates.push(...WELL_KNOWN);
  }
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here; try the next one
    }
  }
  throw new NatsServerNotFoundError([...new Set(candidates)]);
}
