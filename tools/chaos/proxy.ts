/**
 * A controllable TCP proxy for the chaos harness: one sits between a daemon and its NATS server(s)
 * and can cut the link, delay it, or throttle it, per direction. Binds 127.0.0.1 only.
 *
 * NATS clients behind a proxy should connect with `ignoreClusterUpdates: true` (or the cluster run
 * with `no_advertise`), otherwise they learn the servers' real addresses from INFO and bypass it.
 * @module
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";

/** Where the proxy forwards to. */
export interface ProxyTarget {
  host: string;
  port: number;
}

/** Traffic direction: client → server (`up`) or server → client (`down`). */
export type ProxyDirection = "up" | "down";

/** What `cut()` does to connections that arrive while the link is cut. */
export type CutMode = "refuse" | "blackhole";

/** Options of {@link startProxy}. */
export interface ProxyOptions {
  /** One target, or candidates tried in order on each new connection (the first reachable wins). */
  target: ProxyTarget | readonly ProxyTarget[] | (() => readonly ProxyTarget[]);
  /** Port to listen on, on 127.0.0.1 (default 0: any free port). */
  listenPort?: number;
  /** Per-target connect timeout (default 1000 ms). */
  connectTimeoutMs?: number;
  /** Bytes queued per direction and connection before the sending side is paused (default 4 MiB). */
  maxQueuedBytes?: number;
}

/** Counters since the proxy started. */
export interface ProxyStats {
  /** Client connections accepted and forwarded to a target. */
  accepted: number;
  /** Connections open right now (forwarded ones). */
  active: number;
  /** Connections reset or held because the link was cut. */
  refused: number;
  /** Connections dropped because no target was reachable. */
  upstreamFailures: number;
  /** Bytes forwarded client → server, and server → client. */
  bytesUp: number;
  bytesDown: number;
  /** Number of `cut()` calls, and whether the link is cut now. */
  cuts: number;
  isCut: boolean;
}

/** A running proxy. */
export interface ProxyHandle extends AsyncDisposable {
  readonly port: number;
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /**
   * Destroys every open connection (clients see a disconnect) and, until `heal()`, resets new ones
   * (`refuse`, default) or accepts and silently holds them (`blackhole`: clients hang until their own
   * timeouts fire; held sockets are destroyed on `heal()`).
   */
  cut(mode?: CutMode): void;
  /** Lets new connections through again. */
  heal(): void;
  /** One-way delay added to every chunk, per direction (default both); applies to data sent after the call. */
  setLatency(ms: number, direction?: ProxyDirection | "both"): void;
  /** Throughput limit in bytes per second, per direction (default both); `null` removes it. */
  setBandwidth(bytesPerSec: number | null, direction?: ProxyDirection | "both"): void;
  /** A snapshot of the counters. */
  readonly stats: ProxyStats;
  /** Stops listening and destroys every connection. Idempotent. */
  close(): Promise<void>;
}

interface Shaping {
  latencyMs: number;
  bytesPerSec: number | null;
}

/** Starts a proxy on 127.0.0.1 and resolves once it listens. */
export async function startProxy(options: ProxyOptions): Promise<ProxyHandle> {
  const proxy = new ChaosProxy(options);
  await proxy.listen(options.listenPort ?? 0);
  return proxy;
}

class ChaosProxy implements ProxyHandle {
  private readonly server: Server;
  private readonly links = new Set<Link>();
  private readonly held = new Set<Socket>();
  private readonly shaping: Record<ProxyDirection, Shaping> = {
    up: { latencyMs: 0, bytesPerSec: null },
    down: { latencyMs: 0, bytesPerSec: null },
  };
  private readonly counters: Omit<ProxyStats, "active" | "isCut"> = {
    accepted: 0,
    refused: 0,
    upstreamFailures: 0,
    bytesUp: 0,
    bytesDown: 0,
    cuts: 0,
  };
  private cutMode: CutMode | undefined;
  private listenPort = 0;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: ProxyOptions) {
    this.server = createServer((socket) => this.onConnection(socket));
  }

  get port(): number {
    return this.listenPort;
  }
  get url(): string {
    return `nats://127.0.0.1:${this.listenPort}`;
  }
  get stats(): ProxyStats {
    return { ...this.counters, active: this.links.size, isCut: this.cutMode !== undefined };
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host: "127.0.0.1", port }, () => {
        this.server.off("error", reject);
        const addr = this.server.address();
        this.listenPort = typeof addr === "object" && addr ? addr.port : port;
        resolve();
      });
    });
  }

  cut(mode: CutMode = "refuse"): void {
    this.cutMode = mode;
    this.counters.cuts += 1;
    for (const link of [...this.links]) link.destroy();
  }

  heal(): void {
    this.cutMode = undefined;
    for (const socket of this.held) socket.destroy();
    this.held.clear();
  }

  setLatency(ms: number, direction: ProxyDirection | "both" = "both"): void {
    if (!(ms >= 0) || !Number.isFinite(ms))
      throw new RangeError(`latency must be a finite number ≥ 0, got ${ms}`);
    for (const d of directions(direction)) this.shaping[d].latencyMs = ms;
  }

  setBandwidth(bytesPerSec: number | null, direction: ProxyDirection | "both" = "both"): void {
    if (bytesPerSec !== null && !(bytesPerSec > 0)) {
      throw new RangeError(`bandwidth must be > 0 bytes/s or null, got ${bytesPerSec}`);
    }
    for (const d of directions(direction)) this.shaping[d].bytesPerSec = bytesPerSec;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const link of [...this.links]) link.destroy();
      this.heal();
      this.cutMode = "refuse";
    });
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private onConnection(client: Socket): void {
    client.on("error", () => undefined); // a reset by either side is normal here
    if (this.cutMode || this.closing) return this.refuse(client);
    void this.connectUpstream().then((upstream) => {
      if (!upstream) {
        this.counters.upstreamFailures += 1;
        return client.destroy();
      }
      if (this.cutMode || this.closing || client.destroyed) {
        upstream.destroy();
        return this.refuse(client);
      }
      this.counters.accepted += 1;
      const maxQueued = this.options.maxQueuedBytes ?? 4 * 1024 * 1024;
      const link = new Link(client, upstream, this.shaping, maxQueued, (d, n) => {
        if (d === "up") this.counters.bytesUp += n;
        else this.counters.bytesDown += n;
      });
      this.links.add(link);
      link.onClose = () => this.links.delete(link);
    });
  }

  private refuse(client: Socket): void {
    this.counters.refused += 1;
    if (this.cutMode === "blackhole" && !this.closing) {
      this.held.add(client);
      client.on("close", () => this.held.delete(client));
      client.resume(); // read and discard, never answer
      return;
    }
    client.resetAndDestroy();
  }

  /** Tries each target in order; resolves with the first connected socket, or undefined. */
  private async connectUpstream(): Promise<Socket | undefined> {
    const t = this.options.target;
    const targets = typeof t === "function" ? t() : Array.isArray(t) ? t : [t as ProxyTarget];
    for (const target of targets) {
      const socket = await tryConnect(target, this.options.connectTimeoutMs ?? 1000);
      if (socket) return socket;
    }
    return undefined;
  }
}

function directions(d: ProxyDirection | "both"): ProxyDirection[] {
  return d === "both" ? ["up", "down"] : [d];
}

function tryConnect(target: ProxyTarget, timeoutMs: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: target.host, port: target.port });
    const fail = (): void => {
      socket.destroy();
      resolve(undefined);
    };
    socket.setTimeout(timeoutMs, fail);
    socket.once("error", fail);
    socket.once("connect", () => {
      socket.setTimeout(0);
      socket.off("error", fail);
      socket.on("error", () => undefined);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

/** A client socket joined to an upstream socket by two shaped pipes. */
class Link {
  onClose: () => void = () => undefined;
  private readonly pipes: Pipe[];
  private closed = false;

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    shaping: Record<ProxyDirection, Shaping>,
    maxQueued: number,
    count: (d: ProxyDirection, n: number) => void,
  ) {
    client.setNoDelay(true);
    this.pipes = [
      new Pipe(client, upstream, shaping.up, maxQueued, (n) => count("up", n)),
      new Pipe(upstream, client, shaping.down, maxQueued, (n) => count("down", n)),
    ];
    for (const s of [client, upstream]) s.once("close", () => this.destroy());
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pipes) p.stop();
    this.client.destroy();
    this.upstream.destroy();
    this.onClose();
  }
}

interface Queued {
  chunk: Buffer;
  due: number;
}

/**
 * Moves bytes from `src` to `dst` in order, each chunk held until `arrival + latency` and, with a
 * bandwidth limit, spaced so the rate stays under it. The queue is bounded: past `maxQueued` bytes
 * `src` is paused (TCP backpressure reaches the sender) until it drains below half.
 */
class Pipe {
  private readonly queue: Queued[] = [];
  private head = 0;
  private queuedBytes = 0;
  private nextFree = 0; // earliest time the "wire" is free again under the bandwidth limit
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private pausedByUs = false;
  private srcEnded = false;
  private stopped = false;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly shaping: Shaping,
    private readonly maxQueued: number,
    private readonly count: (n: number) => void,
  ) {
    src.on("data", (chunk: Buffer) => this.onData(chunk));
    src.once("end", () => {
      this.srcEnded = true;
      this.maybeEnd();
    });
    dst.on("drain", () => {
      this.waitingDrain = false;
      this.pump();
    });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.queue.length = 0;
    this.head = 0;
  }

  private onData(chunk: Buffer): void {
    if (this.stopped) return;
    const { latencyMs, bytesPerSec } = this.shaping;
    if (latencyMs === 0 && bytesPerSec === null && this.pending() === 0 && !this.waitingDrain) {
      this.write(chunk);
      return;
    }
    const due = Date.now() + latencyMs;
    // Split under a bandwidth limit so a large chunk goes out at an even rate (≈50 ms slices).
    const piece =
      bytesPerSec === null ? chunk.length : Math.min(65536, Math.max(64, Math.floor(bytesPerSec / 20)));
    for (let off = 0; off < chunk.length; off += piece) {
      this.queue.push({ chunk: chunk.subarray(off, off + piece), due });
    }
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > this.maxQueued && !this.pausedByUs) {
      this.pausedByUs = true;
      this.src.pause();
    }
    this.pump();
  }

  private pending(): number {
    return this.queue.length - this.head;
  }

  private pump(): void {
    if (this.stopped || this.waitingDrain) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    // Bounded: each iteration removes one queued item.
    while (this.pending() > 0) {
      const item = this.queue[this.head]!;
      const now = Date.now();
      const sendAt = Math.max(item.due, this.nextFree);
      if (sendAt > now) {
        this.timer = setTimeout(() => this.pump(), sendAt - now);
        return;
      }
      this.head += 1;
      this.queuedBytes -= item.chunk.length;
      const bps = this.shaping.bytesPerSec;
      if (bps !== null) this.nextFree = Math.max(now, this.nextFree) + (item.chunk.length * 1000) / bps;
      const ok = this.write(item.chunk);
      if (this.pausedByUs && this.queuedBytes <= this.maxQueued / 2) {
        this.pausedByUs = false;
        this.src.resume();
      }
      if (!ok) break;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.maybeEnd();
  }

  private write(chunk: Buffer): boolean {
    if (this.dst.destroyed) return false;
    this.count(chunk.length);
    const ok = this.dst.write(chunk);
    if (!ok) {
      this.waitingDrain = true;
      if (this.pending() === 0 && !this.pausedByUs) {
        // Fast path (no shaping): let TCP backpressure reach the sender directly.
        this.pausedByUs = true;
        this.src.pause();
        this.dst.once("drain", () => {
          if (this.pausedByUs && this.queuedBytes <= this.maxQueued / 2) {
            this.pausedByUs = false;
            this.src.resume();
          }
        });
      }
    }
    return ok;
  }

  private maybeEnd(): void {
    if (this.srcEnded && this.pending() === 0 && !this.stopped) this.dst.end();
  }
}
