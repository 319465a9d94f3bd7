/**
 * A transport that loses some of the frames it would deliver, for tests of what a lost message
 * costs (a client whose `job.finished` never arrives). Test code only: production transports
 * never drop on purpose.
 * @module
 */
import { createCodec, isChunk } from "../../messages/index.js";
import type { FrameHandler, Transport, TransportStatus, Unsubscribe } from "../../runtime/transport/index.js";

/** Decides whether an inbound frame is lost. */
export type DropRule = (subject: string, frame: Uint8Array) => boolean;

/** Wraps a transport; inbound frames matching `drop` never reach the subscriber. */
export class LossyTransport implements Transport {
  /** Frames lost so far. */
  dropped = 0;
  private readonly listeners = new Set<(status: TransportStatus) => void>();

  constructor(
    private readonly inner: Transport,
    private readonly drop: DropRule,
  ) {}

  get kind(): Transport["kind"] {
    return this.inner.kind;
  }
  get maxPayload(): number {
    return this.inner.maxPayload;
  }
  get closed(): boolean {
    return this.inner.closed;
  }
  publish(subject: string, data: Uint8Array): void {
    this.inner.publish(subject, data);
  }
  subscribe(subject: string, handler: FrameHandler, opts?: { queue?: string }): Unsubscribe {
    return this.inner.subscribe(
      subject,
      (data, subj) => {
        if (this.drop(subj, data)) this.dropped++;
        else handler(data, subj);
      },
      opts,
    );
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  onStatus(listener: (status: TransportStatus) => void): Unsubscribe {
    this.listeners.add(listener);
    const off = this.inner.onStatus(listener);
    return () => {
      this.listeners.delete(listener);
      off();
    };
  }
  /** Tells the status listeners of a connection change that did not happen (a reconnect, say). */
  announce(status: TransportStatus): void {
    for (const l of this.listeners) l(status);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Loses every message of type `type` published on a topic (`topic`, e.g. `job.<id>.events`). */
export function dropsTopicMessages(topic: string, type: string): DropRule {
  const codec = createCodec();
  return (subject, frame) => {
    if (!subject.endsWith(`.topic.${topic}`) || isChunk(frame)) return false;
    try {
      return codec.decode(frame, subject).type === type;
    } catch {
      return false;
    }
  };
}
