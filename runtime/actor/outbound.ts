import {
  checkBody,
  MessageDecodeError,
  type Envelope,
  type Failure,
  type MessageRegistry,
} from "../../messages/index.js";
import type { Wire } from "../wire.js";
import { formatAddress, parseAddress } from "./address.js";
import type { PendingAsks } from "./asks.js";
import type { Delivery } from "./cell.js";
import type { DeadLetters } from "./dead-letters.js";
import { ActorSystemStoppedError } from "./errors.js";
import { ASK_PATH, SYS_PATH, type Origin } from "./options.js";
import type { AskOptions, Message } from "./types.js";

/** What the sending side reads from its actor system. */
export interface OutboundHost {
  readonly nodeId: string;
  readonly incarnation: string;
  readonly registry: MessageRegistry;
  readonly deadLetters: DeadLetters;
  readonly wire: Wire;
  readonly stopped: boolean;
  nodeSubject(to: string): string;
  topicSubject(topic: string): string;
}

/** Hands a message addressed to this node to its local destination (an actor, a pending ask, `$sys`). */
export type LocalDispatch = (
  path: string,
  msg: Message,
  delivery: Delivery,
  corr: string | undefined,
  to: string,
) => void;

/** How one message is sent: who it is from, its id, what it answers, when its asker gives up. */
export interface SendMeta {
  from?: string;
  id?: string;
  corr?: string;
  deadline?: number;
}

/**
 * The sending side of one actor system: message ids, tell, ask, replies and failure replies, and
 * topic publishes. A message to this node is dispatched in process (no codec); one to another node
 * is wrapped in an envelope and published on that node's subject.
 */
export class Outbound {
  private seq = 0;
  private readonly idPrefix: string;

  /** `checkLocalSends` is the system's option: check local sends against the registry's schemas. */
  constructor(
    private readonly host: OutboundHost,
    private readonly asks: PendingAsks,
    private readonly checkLocalSends: boolean,
    private readonly dispatchLocal: LocalDispatch,
  ) {
    this.idPrefix = `${host.incarnation.slice(0, 8)}-`;
  }

  /** Sends one message to an address, local or remote; a stopped system turns it into a dead letter. */
  send(to: string, msg: Message, meta: SendMeta): void {
    const host = this.host;
    if (host.stopped) {
      host.deadLetters.record({ to, from: meta.from, type: msg.type, reason: "system-stopped" });
      return;
    }
    const { node, path } = parseAddress(to);
    const id = meta.id ?? this.nextId();
    if (node === host.nodeId) {
      const delivery: Delivery = { msg, from: meta.from, id, ask: meta.deadline !== undefined };
      if (this.checkLocalSends && !this.localSendPasses(delivery, to)) return;
      this.dispatchLocal(path, msg, delivery, meta.corr, to);
      return;
    }
    const env: Envelope = {
      v: 1,
      type: msg.type,
      from: meta.from ?? formatAddress(host.nodeId, "$anon"),
      to,
      id,
      inc: host.incarnation,
      body: msg,
    };
    if (meta.corr !== undefined) env.corr = meta.corr;
    if (meta.deadline !== undefined) env.deadline = meta.deadline;
    host.wire.send(host.nodeSubject(node), env);
  }

  /** Sends a request and waits for its reply, at most `o.timeoutMs`. */
  ask(address: string, msg: Message, o: AskOptions): Promise<Message> {
    if (!(o?.timeoutMs > 0)) return Promise.reject(new RangeError("ask needs a positive timeoutMs"));
    if (this.host.stopped) return Promise.reject(new ActorSystemStoppedError(this.host.nodeId));
    const id = this.nextId();
    const reply = this.asks.wait(id, address, msg.type, o.timeoutMs);
    try {
      this.send(address, msg, {
        from: formatAddress(this.host.nodeId, ASK_PATH),
        id,
        deadline: Date.now() + o.timeoutMs,
      });
    } catch (error) {
      this.asks.fail(id, error instanceof Error ? error : new Error(String(error)));
    }
    return reply;
  }

  /** Sends a reply for a delivery, from `fromPath` on this node. */
  replyTo(delivery: Delivery, msg: Message, fromPath: string): void {
    if (!delivery.from) {
      this.host.deadLetters.record({ to: "(nobody)", type: msg.type, reason: "no-reply-address" });
      return;
    }
    this.send(delivery.from, msg, { from: formatAddress(this.host.nodeId, fromPath), corr: delivery.id });
  }

  /** Rejects an ask with a typed failure; a tell gets no answer. */
  failAsk(delivery: Origin, code: Failure["code"], message: string): void {
    if (!delivery.from || !delivery.ask) return;
    const failure: Failure = { type: "sys.failure", code, message: message.slice(0, 4000) };
    // Called on the delivery path of hostile input: a failure reply that cannot be sent (an
    // address that does not parse, a closed connection) is a dead letter, never a throw.
    try {
      this.send(delivery.from, failure, {
        from: formatAddress(this.host.nodeId, SYS_PATH),
        corr: delivery.id,
      });
    } catch {
      this.host.deadLetters.record({
        to: delivery.from.slice(0, 200),
        type: failure.type,
        reason: "unsendable",
      });
    }
  }

  /** Publishes a message on a topic's subject, for every subscribed actor on every node. */
  publish(topic: string, msg: Message): void {
    if (this.host.stopped) return;
    const env: Envelope = {
      v: 1,
      type: msg.type,
      from: formatAddress(this.host.nodeId, "$topic"),
      to: `*/$topic/${topic}`,
      id: this.nextId(),
      inc: this.host.incarnation,
      body: msg,
    };
    this.host.wire.send(this.host.topicSubject(topic), env);
  }

  private nextId(): string {
    return this.idPrefix + (this.seq++).toString(36);
  }

  /** With `checkLocalSends`: whether a local message passes its schema; refuses it as bad input when not. */
  private localSendPasses(delivery: Delivery, to: string): boolean {
    const subject = this.host.nodeSubject(this.host.nodeId);
    try {
      checkBody(delivery.msg.type, delivery.msg, this.host.registry, subject);
      return true;
    } catch (error) {
      if (!(error instanceof MessageDecodeError)) throw error;
      this.host.wire.reportBadInput(error.reason, subject, `local send: ${error.message}`);
      this.host.deadLetters.record({
        to,
        from: delivery.from,
        type: delivery.msg.type,
        reason: error.reason,
      });
      this.failAsk(delivery, "bad-input", error.message);
      return false;
    }
  }
}
