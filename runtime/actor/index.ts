export { ActorSystem, type ActorSystemOptions, type Fence } from "./system.js";
export type { ActorKind } from "./kinds.js";
export type {
  ActorRef,
  ActorContext,
  Behavior,
  Message,
  SpawnOptions,
  AskOptions,
  ActorEvent,
} from "./types.js";
export {
  DEFAULT_SUPERVISION,
  supervision,
  RestartTracker,
  type SupervisionPolicy,
  type SupervisionStrategy,
} from "./supervision.js";
export { DeadLetters, type DeadLetter } from "./dead-letters.js";
export { parseAddress, formatAddress, isValidSegment, type Address } from "./address.js";
export * from "./errors.js";
