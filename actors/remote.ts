import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { ActorSystem } from "../runtime/actor/index.js";
import { Membership } from "../runtime/cluster/index.js";
import { silentLogger, type Logger } from "../runtime/log.js";
import { JetStreamStores } from "../runtime/store/index.js";
import { NatsTransport, natsAuthFromEnv, parseCreds, type NatsOptions } from "../runtime/transport/index.js";
import type { ClusterHandle } from "./api.js";

/** Options of {@link connectCluster}. */
export interface ConnectOptions extends Partial<NatsOptions> {
  servers: string | string[];
  cluster?: string;
  log?: Logger;
  /**
   * The id this client publishes under (the sender token of its subjects). Default: the identity
   * its credentials file names (`flock auth init` writes `submitter`), else `client-<random>`.
   */
  clientId?: string;
}

/**
 * Connects a client (no heartbeats, no slots: it hosts only the actors that follow a job) to a
 * cluster of daemons over NATS, and listens to their heartbeats to know which nodes are alive.
 */
export async function connectCluster(opts: ConnectOptions): Promise<ClusterHandle> {
  const log = opts.log ?? silentLogger();
  const nats = { ...natsAuthFromEnv(), ...opts };
  const clientId = opts.clientId ?? credsIdentity(nats.credsFile) ?? `client-${randomUUID().slice(0, 8)}`;
  const transport = await NatsTransport.connect({ ...nats, name: clientId });
  const client = await ActorSystem.start({
    nodeId: clientId,
    transport,
    cluster: opts.cluster,
    log,
    ownsTransport: true,
  });
  const membership = new Membership({
    transport,
    cluster: opts.cluster,
    nodeId: clientId,
    incarnation: client.incarnation,
    localInfo: () => ({ slots: 0, freeSlots: 0, device: "none", load: 0, lagMs: 0, actors: {} }),
    observerOnly: true,
    log,
  });
  client.setFence(membership.fence);
  const servers = Array.isArray(opts.servers) ? opts.servers.join(",") : opts.servers;
  return {
    client,
    stores: new JetStreamStores(transport.connection, { cluster: opts.cluster }),
    aliveNodes: () =>
      membership
        .alive()
        .filter((n) => n.node !== clientId && n.slots > 0)
        .map((n) => n.node)
        .sort(),
    describe: `NATS at ${servers}`,
    close: async () => {
      await membership[Symbol.asyncDispose]();
      await client.stop();
    },
  };
}

/** The identity a credentials file names, if any (a server with per-node users allows only that one). */
function credsIdentity(file: string | undefined): string | undefined {
  return file === undefined ? undefined : parseCreds(readFileSync(file, "utf8")).identity;
}
