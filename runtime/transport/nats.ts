import {
  connect,
  nkeyAuthenticator,
  type ConnectionOptions,
  type NatsConnection,
  type Subscription,
} from "nats";
import { readFileSync } from "node:fs";
import { credsFileAuthenticator, parseCreds } from "./creds.js";
import { BATCH_HEADER_BYTES, decodeBatch, encodeBatch, isBatch } from "./batch.js";
import type { FrameHandler, Transport, TransportStatus, Unsubscribe } from "./transport.js";

/** Largest batch of small frames published as one NATS message. */
const MAX_BATCH_BYTES = 64 * 1024;

/** How to reach and authenticate to NATS; every field passes through to the `nats` client. */
export interface NatsOptions {
  /** One or more server URLs (a cluster); `nats://127.0.0.1:4222` style. */
  servers: string | string[];
  /** Connection name shown by the server's monitoring. */
  name?: string;
  user?: string;
  pass?: string;
  token?: string;
  /** An nkey seed (the `SU...` string) for nkey authentication. */
  nkeySeed?: string;
  /** Path to a `.creds` file: JWT + seed (operator mode), or seed only (`flock auth init`'s nkey users). */
  credsFile?: string;
  /** TLS: CA, cert and key file paths; set `{}` to require TLS with system CAs. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Client ping interval; shorter than the library's 2 minutes so a dead server is noticed in seconds. */
  pingIntervalMs?: number;
  /** How long to keep trying the first connect. */
  connectTimeoutMs?: number;
  /**
   * Use only the given servers, never the ones a cluster advertises: needed when the client
   * reaches NATS through a proxy (the chaos harness) or NAT. Set with FLOCK_NATS_NO_DISCOVERY=1 too.
   */
  ignoreClusterUpdates?: boolean;
}

/** Client settings tuned for failure detection in seconds rather than minutes. */
export function natsConnectionOptions(opts: NatsOptions): ConnectionOptions {
  const servers = (Array.isArray(opts.servers) ? opts.servers : opts.servers.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
  const options: ConnectionOptions = {
    servers,
    name: opts.name,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: opts.pingIntervalMs ?? 1000,
    maxPingOut: 3,
    timeout: opts.connectTimeoutMs ?? 5000,
    waitOnFirstConnect: true,
    noEcho: false,
    ignoreClusterUpdates: opts.ignoreClusterUpdates ?? process.env.FLOCK_NATS_NO_DISCOVERY === "1",
  };
  if (opts.user !== undefined) options.user = opts.user;
  if (opts.pass !== undefined) options.pass = opts.pass;
  if (opts.token !== undefined) options.token = opts.token;
  if (opts.nkeySeed) options.authenticator = nkeyAuthenticator(new TextEncoder().encode(opts.nkeySeed));
  if (opts.credsFile) {
    const bytes = readFileSync(opts.credsFile);
    options.authenticator = credsFileAuthenticator(bytes);
    // A user of `flock auth init` may read only its own inbox: replies to others stay private.
    const inbox = parseCreds(new TextDecoder().decode(bytes)).inboxPrefix;
    if (inbox !== undefined) options.inboxPrefix = inbox;
  }
  if (opts.tls)
    options.tls = { caFile: opts.tls.caFile, certFile: opts.tls.certFile, keyFile: opts.tls.keyFile };
  return options;
}

/** Reads NATS credentials from the environment (`NATS_USER`, `NATS_PASS`, `NATS_TOKEN`, `NATS_NKEY_SEED`, `NATS_CREDS`, `NATS_TLS_CA`, `NATS_TLS_CERT`, `NATS_TLS_KEY`). */
export function natsAuthFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<NatsOptions> {
  const out: Partial<NatsOptions> = {};
  if (env.NATS_USER) out.user = env.NATS_USER;
  if (env.NATS_PASS) out.pass = env.NATS_PASS;
  if (env.NATS_TOKEN) out.token = env.NATS_TOKEN;
  if (env.NATS_NKEY_SEED) out.nkeySeed = env.NATS_NKEY_SEED;
  if (env.NATS_CREDS) out.credsFile = env.NATS_CREDS;
  if (env.NATS_TLS_CA || env.NATS_TLS_CERT)
    out.tls = { caFile: env.NATS_TLS_CA, certFile: env.NATS_TLS_CERT, keyFile: env.NATS_TLS_KEY };
  return out;
}

/**
 * A {@link Transport} over a NATS connection.
 *
 * Frames published in one synchronous burst to the same subject go out as one batch frame (see
 * `batch.ts`), flushed in a microtask, in the same event-loop turn, before the client writes to
 * its socket, so no latency is added. Measured by `flock bench`: a remote actor received small
 * tells at about 200k/s with one NATS message per frame, the NATS parser and message object per
 * frame being the largest cost left in the receiver. Order is kept: a publish to another subject
 * (or a frame too large to batch) sends the pending batch first, and `flush()` and `close()` send
 * it before they wait on the server.
 */
export class NatsTransport implements Transport {
  readonly kind = "nats" as const;
  private readonly listeners = new Set<(s: TransportStatus) => void>();
  private isClosed = false;
  private pending: { subject: string; frames: Uint8Array[]; bytes: number } | undefined;
  private flushQueued = false;

  private constructor(readonly connection: NatsConnection) {
    void this.watchStatus();
    void connection.closed().then(() => {
      this.isClosed = true;
      this.emit({ kind: "closed" });
    });
  }

  /** Connects with {@link natsConnectionOptions}. */
  static async connect(opts: NatsOptions): Promise<NatsTransport> {
    const nc = await connect(natsConnectionOptions(opts));
    return new NatsTransport(nc);
  }

  get maxPayload(): number {
    return this.connection.info?.max_payload ?? 1024 * 1024;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.isClosed) return;
    const p = this.pending;
    const size = 4 + data.length;
    if (p && p.subject === subject && p.bytes + size <= MAX_BATCH_BYTES) {
      p.frames.push(data);
      p.bytes += size;
      return;
    }
    this.sendPending();
    if (BATCH_HEADER_BYTES + size > MAX_BATCH_BYTES) {
      this.connection.publish(subject, data);
      return;
    }
    this.pending = { subject, frames: [data], bytes: BATCH_HEADER_BYTES + size };
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        this.sendPending();
      });
    }
  }

  /** Publishes the pending batch (a single frame as itself). */
  private sendPending(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    try {
      this.connection.publish(
        p.subject,
        p.frames.length === 1 ? p.frames[0]! : encodeBatch(p.frames, p.bytes),
      );
    } catch (error) {
      // Runs from a microtask too, where a throw would be uncaught: a closed or draining connection
      // drops the batch as it would have dropped each publish, and says so.
      this.emit({ kind: "error", error: error instanceof Error ? error : new Error(String(error)) });
    }
  }

  subscribe(subject: string, handler: FrameHandler, opts?: { queue?: string }): Unsubscribe {
    // Without wildcards every message's subject is the subscription's: skip decoding it per message.
    const fixed = /[*>]/.test(subject) ? undefined : subject;
    const sub: Subscription = this.connection.subscribe(subject, {
      queue: opts?.queue,
      callback: (err, msg) => {
        if (err) {
          this.emit({ kind: "error", error: err });
          return;
        }
        const data = msg.data;
        const subj = fixed ?? msg.subject;
        const frames = isBatch(data) ? decodeBatch(data) : undefined;
        if (!frames) return this.deliver(handler, data, subj);
        for (const frame of frames) this.deliver(handler, frame, subj);
      },
    });
    return () => {
      if (!sub.isClosed()) sub.unsubscribe();
    };
  }

  /**
   * Hands one frame to a subscriber. A throw must not reach nats.js: its reader loop would stop
   * parsing input until reconnect while the node's failure detector goes on and declares its peers
   * dead. The wire above is total already; this is the last guard, reported as a status error.
   */
  private deliver(handler: FrameHandler, frame: Uint8Array, subject: string): void {
    try {
      handler(frame, subject);
    } catch (error) {
      const err = error instanceof Error ? error : new Error(`subscriber on ${subject} threw a non-error`);
      this.emit({ kind: "error", error: err });
      setImmediate(() =>
        process.emitWarning(`NATS subscriber on ${subject} threw: ${err.stack ?? err.message}`),
      );
    }
  }

  async flush(): Promise<void> {
    this.sendPending();
    if (!this.isClosed) await this.connection.flush();
  }

  onStatus(listener: (s: TransportStatus) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.sendPending();
    this.isClosed = true;
    // Drain flushes what was published; a connection that is down would wait for the server forever,
    // so give the drain a bounded time and then close hard.
    const drained = this.connection.drain().then(
      () => true,
      () => false,
    );
    const timer = new Promise<boolean>((r) => setTimeout(() => r(false), 2_000).unref());
    if (!(await Promise.race([drained, timer])) && !this.connection.isClosed()) await this.connection.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private emit(status: TransportStatus): void {
    for (const l of this.listeners) {
      try {
        l(status);
      } catch (error) {
        setImmediate(() =>
          process.emitWarning(`transport status listener threw: ${(error as Error).message}`),
        );
      }
    }
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.connection.status()) {
      const server = typeof s.data === "string" ? s.data : undefined;
      switch (s.type) {
        case "disconnect":
          this.emit({ kind: "disconnected", server });
          break;
        case "reconnecting":
          this.emit({ kind: "reconnecting" });
          break;
        case "reconnect":
          this.emit({ kind: "reconnected", server });
          break;
        case "error":
          this.emit({ kind: "error", error: s.data instanceof Error ? s.data : new Error(String(s.data)) });
          break;
        default:
          break;
      }
    }
  }
}
