/** Connection state changes a transport reports. */
export type TransportStatus =
  | { kind: "connected"; server?: string }
  | { kind: "disconnected"; server?: string }
  | { kind: "reconnecting" }
  | { kind: "reconnected"; server?: string }
  | { kind: "error"; error: Error }
  | { kind: "closed" };

/** Stops a subscription or listener. */
export type Unsubscribe = () => void;

/** Called for each frame that arrives on a subscription. */
export type FrameHandler = (data: Uint8Array, subject: string) => void;

/**
 * Moves opaque frames between subjects. Two implementations share this contract (and one contract
 * test suite): NATS, and an in-process bus for the embedded single-machine default. Encoding,
 * chunking and validation live above it, in the wire layer, so both go through the same codec path.
 */
export interface Transport extends AsyncDisposable {
  /** `nats` or `inproc`. */
  readonly kind: "nats" | "inproc";
  /** Largest frame the transport carries; bigger messages are chunked above it. */
  readonly maxPayload: number;
  /** Sends one frame; fire-and-forget. */
  publish(subject: string, data: Uint8Array): void;
  /** Delivers frames on a subject (`*` and `>` wildcards as NATS); a queue group shares them. */
  subscribe(subject: string, handler: FrameHandler, opts?: { queue?: string }): Unsubscribe;
  /** Resolves once everything published so far has reached the server (or the bus). */
  flush(): Promise<void>;
  /** Listens to connection state. */
  onStatus(listener: (status: TransportStatus) => void): Unsubscribe;
  /** Closes the connection; further publishes are dropped. */
  close(): Promise<void>;
  /** Whether {@link close} has been called or the connection ended. */
  readonly closed: boolean;
}

/** Matches a NATS-style subject against a pattern with `*` (one token) and `>` (the rest). */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}
