import { Failure } from "../../messages/index.js";
import { addressNode } from "./address.js";
import { ActorExistsError, ActorNotFoundError, AskTimeoutError, RemoteActorError } from "./errors.js";
import type { Message } from "./types.js";

interface PendingAsk {
  resolve: (msg: Message) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  address: string;
}

/** Where a reply settles: the table of asks waiting for their answer, each with its own deadline. */
export class PendingAsks {
  private readonly asks = new Map<string, PendingAsk>();

  /** Waits for the reply correlated with `id`; rejects with AskTimeoutError after `timeoutMs`. */
  wait(id: string, address: string, type: string, timeoutMs: number): Promise<Message> {
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.asks.delete(id);
        reject(new AskTimeoutError(address, type, timeoutMs));
      }, timeoutMs);
      this.asks.set(id, { resolve, reject, timer, address });
    });
  }

  /** Rejects one ask at once (its request could not be sent). */
  fail(id: string, error: Error): void {
    const pending = this.take(id);
    pending?.reject(error);
  }

  /**
   * Settles the ask a reply answers: a `sys.failure` rejects with its typed error, anything else
   * resolves. `from` is the reply's sender: only the node that was asked may answer (an ask id
   * shows in every envelope its asker sends, so another node could guess it and answer first).
   * Returns `late` when no ask waits for it (late, or never asked), `foreign` when the sender is
   * not the asked node (the ask keeps waiting for the real answer).
   */
  settle(corr: string | undefined, msg: Message, from: string | undefined): "settled" | "late" | "foreign" {
    const waiting = corr === undefined ? undefined : this.asks.get(corr);
    if (!waiting) return "late";
    if (addressNode(from) !== addressNode(waiting.address)) return "foreign";
    const pending = this.take(corr!)!;
    if (msg.type !== "sys.failure") {
      pending.resolve(msg);
      return "settled";
    }
    const failure = Failure.safeParse(msg);
    pending.reject(
      failure.success
        ? failureError(pending.address, failure.data)
        : new RemoteActorError(pending.address, "bad-input", "malformed sys.failure reply"),
    );
    return "settled";
  }

  /** Rejects every ask still waiting (the system stops). */
  rejectAll(error: Error): void {
    for (const id of [...this.asks.keys()]) this.fail(id, error);
  }

  private take(id: string): PendingAsk | undefined {
    const pending = this.asks.get(id);
    if (!pending) return undefined;
    this.asks.delete(id);
    clearTimeout(pending.timer);
    return pending;
  }
}

/** The typed error for a failure reply. */
function failureError(address: string, f: Failure): Error {
  if (f.code === "no-such-actor") return new ActorNotFoundError(address, f.message);
  if (f.code === "actor-exists") return new ActorExistsError(address, f.message);
  return new RemoteActorError(address, f.code, f.message);
}
