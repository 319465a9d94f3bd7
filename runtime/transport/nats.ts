import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection, type Subscription } from "nats";
import { readFileSync } from "node:fs";
import type { FrameHandler, Transport, TransportStatus, Unsubscribe } from "./transport.js";

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
  /** Path to a `.creds` file (JWT + nkey). */
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
  const servers = (Array.isArray(opts.servers) ? opts.servers : opts.servers.split(",")).map((s) => s.trim()).filter(Boolean);
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
  if (opts.credsFile) options.authenticator = credsAuthenticator(readFileSync(opts.credsFile));
  if (opts.tls) options.tls = { caFile: opts.tls.caFile, certFile: opts.tls.certFile, keyFile: opts.tls.keyFile };
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
  if (env.NATS_TLS_CA || env.NATS_TLS_CERT) out.tls = { caFile: env.NATS_TLS_CA, certFile: env.NATS_TLS_CERT, keyFile: env.NATS_TLS_KEY };
  return out;
}

/** A {@link Transport} over a NATS connection. */
export class NatsTransport implements Transport {
  readonly kind = "nats" as const;
  private readonly listeners = new Set<(s: TransportStatus) => void>();
  private isClosed = false;

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
    this.connection.publish(subject, data);
  }

  subscribe(subject: string, handler: FrameHandler, opts?: { queue?: string }): Unsubscribe {
    const sub: Subscription = this.connection.subscribe(subject, {
      queue: opts?.queue,
      callback: (err, msg) => {
        if (err) {
          this.emit({ kind: "error", error: err });
          return;
        }
        handler(msg.data, msg.subject);
      },
    });
    return () => {
      if (!sub.isClosed()) sub.unsubscribe();
    };
  }

  async flush(): Promise<void> {
    if (!this.isClosed) await this.connection.flush();
  }

  onStatus(listener: (s: TransportStatus) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    try {
      await this.connection.drain();
    } catch {
      await this.connection.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private emit(status: TransportStatus): void {
    for (const l of this.listeners) {
      try {
        l(status);
      } catch (error) {
        setImmediate(() => process.emitWarning(`transport status listener threw: ${(error as Error).message}`));
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
