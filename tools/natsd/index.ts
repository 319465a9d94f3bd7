/**
 * Launcher for real nats-server processes (tests, chaos harness, benchmark, embedded demo).
 * Binds 127.0.0.1 only. Every process started here is killed when this Node process exits.
 *
 * Ports kept across `restart()`: the client port, the monitoring port and (clustered) the route
 * port, plus the server name and JetStream store dir, so clients reconnect to the same URL and a
 * cluster member rejoins with its data.
 * @module
 */
export { startNatsServer, type NatsServerHandle, type NatsServerOptions } from "./server.js";
export { startNatsCluster, type NatsClusterHandle, type NatsClusterOptions } from "./cluster.js";
export type { ClusterConfig } from "./config.js";
export type { ProcessExit } from "./process.js";
export { findNatsServerBinary } from "./binary.js";
export { freePort, freePorts } from "./ports.js";
export { pollUntil, type PollOptions } from "./poll.js";
export { trackProcess, liveProcessCount } from "./reaper.js";
export {
  NatsServerNotFoundError,
  NatsServerStartError,
  NatsClusterFormError,
  PollTimeoutError,
} from "./errors.js";
