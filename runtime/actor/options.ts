/**
 * The options of an actor system, its fencing hook, and the reserved paths its parts route by.
 * @module
 */
import type { Envelope } from "../../messages/index.js";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { Transport } from "../transport/index.js";
import type { WireLimits } from "../wire.js";
import type { Delivery } from "./cell.js";

/** Options of `ActorSystem.start`. */
export interface ActorSystemOptions {
  nodeId: string;
  transport: Transport;
  /** Subject namespace: `flock.<cluster>.`; two clusters on one server never see each other. */
  cluster?: string;
  /** New on every start, so messages from an earlier life of this node can be fenced off. */
  incarnation?: string;
  log?: Logger;
  metrics?: Metrics;
  wireLimits?: Partial<WireLimits>;
  /** Close the transport when the system stops (default false: the caller owns it). */
  ownsTransport?: boolean;
  /**
   * Debugging aid for tests: check every local tell, ask and reply against the message registry's
   * schema, as a remote one is, and refuse a failing one the same way (bad input, dead letter, a
   * failed ask). Off by default: a local send otherwise skips the schema (and its cost).
   */
  checkLocalSends?: boolean;
}

/** Decides whether an inbound envelope is fenced off; returns the reason or undefined. */
export type Fence = (env: Envelope) => "stale-incarnation" | "stale-epoch" | undefined;

/** Who sent a message and whether they wait for a reply: enough to answer it with a failure. */
export type Origin = Pick<Delivery, "from" | "id" | "ask">;

/** The path replies to this node's asks are addressed to; they settle a pending ask, no actor. */
export const ASK_PATH = "$ask";
/** The path of this node's system service (`sys.*` messages: spawn, stop, ping). */
export const SYS_PATH = "$sys";
