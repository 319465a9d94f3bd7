import {
  subjectMatches,
  type FrameHandler,
  type Transport,
  type TransportStatus,
  type Unsubscribe,
} from "./transport.js";

interface Sub {
  pattern: string;
  handler: FrameHandler;
  queue?: string;
  owner: InProcTransport;
}

/**
 * An in-process message bus with NATS subject semantics: what several actor systems in one process
 * share on the embedded default. Frames are delivered asynchronously (as over a socket), in publish
 * order per subscriber; queue groups get each frame once, round-robin.
 */
export class InProcBus {
  private readonly subs = new Set<Sub>();
  private readonly exact = new Map<string, Sub[]>();
  private rr = 0;
  private pending: Array<[string, Uint8Array]> = [];
  private scheduled = false;

  /** @param maxPayload largest frame, as a NATS server's max_payload (default 8 MiB). */
  constructor(readonly maxPayload = 8 * 1024 * 1024) {}

  /** A transport attached to this bus. */
  connect(): InProcTransport {
    return new InProcTransport(this);
  }

  /** @internal */
  add(sub: Sub): Unsubscribe {
    this.subs.add(sub);
    this.exact.clear();
    return () => {
      this.subs.delete(sub);
      this.exact.clear();
    };
  }

  /** @internal */
  removeOwner(owner: InProcTransport): void {
    for (const sub of this.subs) if (sub.owner === owner) this.subs.delete(sub);
    this.exact.clear();
  }

  /** @internal */
  publish(subject: string, data: Uint8Array): void {
    if (data.length > this.maxPayload)
      throw new RangeError(`frame of ${data.length} B exceeds max payload ${this.maxPayload} B`);
    this.pending.push([subject, data]);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    for (const [subject, data] of batch) this.deliver(subject, data);
  }

  private deliver(subject: string, data: Uint8Array): void {
    let matched = this.exact.get(subject);
    if (!matched) {
      matched = [...this.subs].filter((s) => subjectMatches(s.pattern, subject));
      this.exact.set(subject, matched);
    }
    const groups = new Map<string, Sub[]>();
    for (const sub of matched) {
      if (sub.queue === undefined) {
        safeCall(sub.handler, data, subject);
      } else {
        const group = groups.get(sub.queue) ?? [];
        group.push(sub);
        groups.set(sub.queue, group);
      }
    }
    for (const group of groups.values()) {
      const member = group[this.rr++ % group.length];
      if (member) safeCall(member.handler, data, subject);
    }
  }
}

function safeCall(handler: FrameHandler, data: Uint8Array, subject: string): void {
  try {
    handler(data, subject);
  } catch (error) {
    // A subscriber's bug must not stop delivery to the others; report it off this stack.
    setImmediate(() =>
      process.emitWarning(`in-process subscriber on ${subject} threw: ${(error as Error).stack ?? error}`),
    );
  }
}

/** One connection to an {@link InProcBus}. */
export class InProcTransport implements Transport {
  readonly kind = "inproc" as const;
  private isClosed = false;
  private readonly listeners = new Set<(s: TransportStatus) => void>();

  constructor(private readonly bus: InProcBus) {}

  get maxPayload(): number {
    return this.bus.maxPayload;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  publish(subject: string, data: Uint8Array): void {
    if (!this.isClosed) this.bus.publish(subject, data);
  }

  subscribe(subject: string, handler: FrameHandler, opts?: { queue?: string }): Unsubscribe {
    if (this.isClosed) throw new Error("transport is closed");
    return this.bus.add({ pattern: subject, handler, queue: opts?.queue, owner: this });
  }

  flush(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  onStatus(listener: (s: TransportStatus) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.bus.removeOwner(this);
    for (const l of this.listeners) l({ kind: "closed" });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
