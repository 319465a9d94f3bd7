import type { Logger } from "../log.js";
import type { SupervisionPolicy } from "./supervision.js";

/** A message: any object tagged with its `type`. */
export type Message = { type: string };

/** Options of one ask. */
export interface AskOptions {
  /** Mandatory: an ask without a deadline could wait forever. */
  timeoutMs: number;
}

/**
 * What callers hold to talk to an actor, local or remote alike: an address plus `tell` and `ask`.
 * Refs on the wire are their address strings.
 */
export interface ActorRef<M extends Message = Message> {
  readonly address: string;
  /** Fire-and-forget. `from` is the address replies go to (none by default). */
  tell(msg: M, from?: ActorRef | string): void;
  /** Request/reply; rejects with AskTimeoutError, ActorNotFoundError or RemoteActorError, never hangs. */
  ask<R extends Message = Message>(msg: M, opts: AskOptions): Promise<R>;
}

/** Lifecycle events of local actors, for observers and tests. */
export type ActorEvent =
  | { kind: "spawned"; path: string }
  | { kind: "restarted"; path: string; error: Error; delayMs: number }
  | { kind: "resumed"; path: string; error: Error }
  | { kind: "escalated"; path: string; error: Error }
  | { kind: "failed"; path: string; error: Error }
  | { kind: "stopped"; path: string };

/** What an actor sees while it handles a message. */
export interface ActorContext<M extends Message = Message> {
  readonly self: ActorRef<M>;
  /** Address of the sender, when it gave one. */
  readonly from?: string;
  /** Whether the current message is an ask (someone waits for a reply). */
  readonly isAsk: boolean;
  readonly log: Logger;
  readonly nodeId: string;
  /** Answers the current message: the asker's promise, or the sender's mailbox. */
  reply<R extends Message>(msg: R): void;
  /** A ref to any address, local or remote. */
  ref<T extends Message = Message>(address: string): ActorRef<T>;
  /** Spawns a child supervised by this actor. */
  spawn<T extends Message, S>(behavior: Behavior<T, S>, opts: SpawnOptions): ActorRef<T>;
  /** Stops this actor after the current message. */
  stop(): void;
}

/**
 * An actor's behaviour: optional `init` (run at spawn and at every restart), `receive` for each
 * message (returning the next state, or undefined to keep it), optional `stopped` for cleanup.
 */
export interface Behavior<M extends Message = Message, S = undefined> {
  init?(ctx: ActorContext<M>): S;
  receive(state: S, msg: M, ctx: ActorContext<M>): S | void | Promise<S | void>;
  stopped?(state: S, ctx: ActorContext<M>): void;
}

/** Where and how to spawn. */
export interface SpawnOptions {
  /** One address segment: letters, digits, `_ $ . : -`. */
  name: string;
  supervision?: Partial<SupervisionPolicy>;
  /** Most messages waiting in the mailbox; past it the newest is dead-lettered (default 10 000). */
  mailboxLimit?: number;
}
