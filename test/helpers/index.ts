/**
 * Test kit: child processes, nats-server per test, bounded polls.
 * @module
 */
export {
  spawnChild,
  registerCleanup,
  type ChildHandle,
  type SpawnChildOptions,
  type Cleanup,
  type HasAfter,
} from "./proc.js";
export {
  natsTest,
  useNatsServer,
  useNatsCluster,
  sharedJetStream,
  formatLogs,
  type NatsKit,
} from "./nats.js";
export { waitFor, type WaitForOptions } from "./wait.js";
export { scaleTimeout, TIMEOUT_FACTOR } from "./timeouts.js";
