/**
 * Free-port allocation and the server's ports file.
 * @module
 */
import { readdir, readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
 * Another process may take it before it is used: callers retry on "address already in use".
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("could not read the bound port"))));
    });
  });
}

/** Returns `count` distinct free ports. */
export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; ports.size < count && i < count * 10; i++) ports.add(await freePort(host));
  if (ports.size < count) throw new Error(`could not find ${count} distinct free ports`);
  return [...ports];
}

/** What nats-server writes into `<ports_file_dir>/<exe>_<pid>.ports`. */
export interface PortsFile {
  nats: string[];
  monitoring?: string[];
  cluster?: string[];
}

/**
 * Reads the ports file of server `pid` from `dir`, or `undefined` if it is not there yet or not yet
 * complete (the server writes it without an atomic rename, so a partial read is retried).
 */
export async function readPortsFile(dir: string, pid: number): Promise<PortsFile | undefined> {
  const suffix = `_${pid}.ports`;
  const name = (await readdir(dir)).find((f) => f.endsWith(suffix));
  if (!name) return undefined;
  try {
    const parsed = JSON.parse(await readFile(join(dir, name), "utf8")) as PortsFile;
    return Array.isArray(parsed.nats) && parsed.nats.length > 0 ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Port number of a `scheme://host:port` URL. */
export function portOf(url: string): number {
  return Number(new URL(url).port);
}
