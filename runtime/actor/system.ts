import nact from "nact";
import type { z } from "zod";
import {
  SYSTEM_MESSAGES,
  MessageRegistry,
  decodeBody,
  MessageDecodeError,
  type Envelope,
  type SpawnActor,
} from "../../messages/index.js";
import { silentLogger, type Logger } from "../log.js";
import { Metrics } from "../metrics.js";
import type { Transport, Unsubscribe } from "../transport/index.js";
import { Wire, type WireLimits } from "../wire.js";
import { formatAddress, isValidSegment, parseAddress } from "./address.js";
import { Cell, type CellHost, type Delivery } from "./cell.js";
import { DeadLetters } from "./dead-letters.js";
import {
  ActorExistsError,
  ActorNotFoundError,
  ActorSystemStoppedError,
  AskTimeoutError,
  RemoteActorError,
  UnknownActorKindError,
} from "./errors.js";
import { supervision } from "./supervision.js";
import type { ActorEvent, ActorRef, AskOptions, Behavior, Message, SpawnOptions } from "./types.js";
import { randomUUID } from "node:crypto";

/** An actor kind a remote node may ask this node to spawn: a name, an argument schema, a factory. No code travels. */
export interface ActorKind<A = unknown> {
  args: z.ZodType<A>;
  create(args: A, system: ActorSystem): Behavior<Message, unknown>;
  supervision?: SpawnOptions["supervision"];
}

/** Options of {@link ActorSystem.start}. */
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
}

/** Decides whether an inbound envelope is fenced off; returns the reason or undefined. */
export type Fence = (env: Envelope) => "stale-incarnation" | "stale-epoch" | undefined;

interface PendingAsk {
  resolve: (msg: Message) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  address: string;
}

const ASK_PATH = "$ask";
const SYS_PATH = "$sys";

/**
 * One node's actors. Local actors run on nact with supervision; `tell` and `ask` reach local and
 * remote actors alike (location transparency): a remote address is encoded and published on the
 * target node's subject, where that node's gateway checks it and dispatches it through an explicit
 * registry. Undeliverable messages become dead letters; bad input is counted and refused.
 */
export class ActorSystem implements CellHost, AsyncDisposable {
  readonly nodeId: string;
  readonly cluster: string;
  readonly incarnation: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly registry = new MessageRegistry().register(...SYSTEM_MESSAGES);
  readonly deadLetters: DeadLetters;
  readonly wire: Wire;
  private readonly cells = new Map<string, Cell>();
  private readonly kinds = new Map<string, ActorKind<unknown>>();
  private readonly asks = new Map<string, PendingAsk>();
  private readonly listeners = new Set<(e: ActorEvent) => void>();
  private readonly nactSystem: object;
  private readonly guardian: object;
  private readonly unsubscribe: Unsubscribe;
  private readonly topics = new Map<string, { paths: Set<string>; off: Unsubscribe }>();
  private fence: Fence | undefined;
  private seq = 0;
  private readonly idPrefix: string;
  private isStopped = false;

  private constructor(private readonly opts: ActorSystemOptions) {
    if (!isValidSegment(opts.nodeId))
      throw new Error(`invalid node id "${opts.nodeId}": use letters, digits, _ $ . : -`);
    this.nodeId = opts.nodeId;
    this.cluster = opts.cluster ?? "default";
    if (!/^[A-Za-z0-9_-]+$/.test(this.cluster))
      throw new Error(`invalid cluster name "${this.cluster}": use letters, digits, _ -`);
    this.incarnation = opts.incarnation ?? randomUUID().slice(0, 13);
    this.idPrefix = `${this.incarnation.slice(0, 8)}-`;
    this.log = opts.log ?? silentLogger();
    this.metrics = opts.metrics ?? new Metrics();
    this.deadLetters = new DeadLetters(this.metrics);
    this.wire = new Wire(opts.transport, this.metrics, this.log, opts.wireLimits);
    const nactApi = nact as unknown as {
      start(opts: { name: string }): object;
      spawn(...a: unknown[]): object;
    };
    this.nactSystem = nactApi.start({ name: `${this.nodeId}:${this.incarnation}` });
    this.guardian = nactApi.spawn(this.nactSystem, (s: unknown) => s, "user", {
      onCrash: (_m: unknown, error: Error, ctx: { stopChild: symbol }, child?: { name: string }) => {
        if (child) {
          this.markStopped(child.name);
          this.emit({ kind: "failed", path: child.name, error });
        }
        return ctx.stopChild;
      },
    });
    this.unsubscribe = this.wire.listen(this.nodeSubject(this.nodeId), (env, subject) =>
      this.onInbound(env, subject),
    );
  }

  /** Starts a node's actor system on a connected transport. */
  static async start(opts: ActorSystemOptions): Promise<ActorSystem> {
    const system = new ActorSystem(opts);
    await opts.transport.flush();
    return system;
  }

  /** The subject a node receives actor messages on. */
  nodeSubject(nodeId: string): string {
    return `flock.${this.cluster}.node.${nodeId}`;
  }

  /** A subject under this cluster's namespace. */
  subject(suffix: string): string {
    return `flock.${this.cluster}.${suffix}`;
  }

  /** Whether {@link stop} was called. */
  get stopped(): boolean {
    return this.isStopped;
  }

  /** Spawns a top-level local actor. */
  spawn<M extends Message, S>(behavior: Behavior<M, S>, opts: SpawnOptions): ActorRef<M> {
    return this.spawnCell(
      opts.name,
      this.guardian,
      behavior as unknown as Behavior<Message, unknown>,
      opts,
    ) as ActorRef<M>;
  }

  /** @internal Spawns a child of a local actor (through its context). */
  spawnChild(parent: Cell, behavior: Behavior<Message, unknown>, opts: SpawnOptions): ActorRef {
    return this.spawnCell(`${parent.path}/${opts.name}`, parent.nactRef, behavior, opts);
  }

  private spawnCell(
    path: string,
    parentRef: object,
    behavior: Behavior<Message, unknown>,
    opts: SpawnOptions,
  ): ActorRef {
    if (this.isStopped) throw new ActorSystemStoppedError(this.nodeId);
    if (!isValidSegment(opts.name))
      throw new Error(`invalid actor name "${opts.name}": use letters, digits, _ $ . : -`);
    if (this.cells.get(path)?.stopped === false) throw new ActorExistsError(formatAddress(this.nodeId, path));
    return new Cell(this, path, parentRef, behavior, supervision(opts.supervision)).self;
  }

  /** A ref to any address; remote refs cost nothing until used. */
  ref<M extends Message = Message>(address: string): ActorRef<M> {
    parseAddress(address);
    return {
      address,
      tell: (msg, from) => this.send(address, msg, { from: typeof from === "string" ? from : from?.address }),
      ask: <R extends Message>(msg: M, o: AskOptions) => this.ask<R>(address, msg, o),
    };
  }

  /** Whether a local actor lives at this path. */
  has(path: string): boolean {
    const cell = this.cells.get(path);
    return Boolean(cell && !cell.stopped);
  }

  /** Paths of the live local actors. */
  paths(): string[] {
    return [...this.cells.values()].filter((c) => !c.stopped).map((c) => c.path);
  }

  /** Registers an actor kind that remote nodes may spawn here by name. */
  registerKind<A>(kind: string, def: ActorKind<A>): void {
    this.kinds.set(kind, def as ActorKind<unknown>);
  }

  /** Asks a node (this one or another) to spawn an actor of a registered kind. */
  async spawnRemote<M extends Message = Message>(
    nodeId: string,
    kind: string,
    name: string,
    args: unknown,
    o: AskOptions,
  ): Promise<ActorRef<M>> {
    const reply = await this.ask<Message & { address?: string }>(
      formatAddress(nodeId, SYS_PATH),
      { type: "sys.spawn", kind, name, args } as SpawnActor,
      o,
    );
    if (reply.type !== "sys.spawned" || !reply.address)
      throw new RemoteActorError(nodeId, "spawn-failed", `unexpected reply ${reply.type}`);
    return this.ref<M>(reply.address);
  }

  /** Asks a node to stop one of its actors. */
  async stopRemote(address: string, o: AskOptions): Promise<void> {
    const { node, path } = parseAddress(address);
    await this.ask(formatAddress(node, SYS_PATH), { type: "sys.stop", path } as Message, o);
  }

  /**
   * Publishes a message to every actor subscribed to a topic, on any node: one publish, fanned out
   * by the transport (NATS does the all-gather's fan-out).
   */
  publish<M extends Message>(topic: string, msg: M): void {
    if (this.isStopped) return;
    const env: Envelope = {
      v: 1,
      type: msg.type,
      from: formatAddress(this.nodeId, "$topic"),
      to: `*/$topic/${topic}`,
      id: this.nextId(),
      inc: this.incarnation,
      body: msg,
    };
    this.wire.send(this.subject(`topic.${topic}`), env);
  }

  /** Subscribes a local actor to a topic; its mailbox receives each published message. */
  subscribeTopic(topic: string, ref: ActorRef): Unsubscribe {
    const { node, path } = parseAddress(ref.address);
    if (node !== this.nodeId)
      throw new Error(`only local actors can subscribe here; ${ref.address} is on ${node}`);
    let entry = this.topics.get(topic);
    if (!entry) {
      const paths = new Set<string>();
      const off = this.wire.listen(this.subject(`topic.${topic}`), (env, subject) =>
        this.onTopic(env, subject, paths),
      );
      entry = { paths, off };
      this.topics.set(topic, entry);
    }
    entry.paths.add(path);
    const e = entry;
    return () => {
      e.paths.delete(path);
      if (e.paths.size === 0 && this.topics.get(topic) === e) {
        e.off();
        this.topics.delete(topic);
      }
    };
  }

  private onTopic(env: Envelope, subject: string, paths: Set<string>): void {
    if (this.fence?.(env))
      return this.wire.reportBadInput(this.fence(env)!, subject, `fenced off ${env.type} from ${env.from}`);
    let msg: Message;
    try {
      msg = decodeBody<Message>(env, this.registry, subject);
    } catch (error) {
      if (!(error instanceof MessageDecodeError)) throw error;
      return this.wire.reportBadInput(error.reason, subject, `${error.message} (from ${env.from})`);
    }
    for (const path of paths) {
      const cell = this.cells.get(path);
      if (cell && !cell.stopped) cell.dispatch({ msg, from: env.from, ask: false });
      else
        this.deadLetters.record({
          to: formatAddress(this.nodeId, path),
          from: env.from,
          type: env.type,
          reason: "stopped",
        });
    }
  }

  /** Installs the fencing check applied to every inbound envelope (membership sets it). */
  setFence(fence: Fence | undefined): void {
    this.fence = fence;
  }

  /** Observes actor lifecycle events. */
  onActorEvent(listener: (e: ActorEvent) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops every actor, rejects pending asks and stops listening. */
  async stop(): Promise<void> {
    if (this.isStopped) return;
    this.isStopped = true;
    this.unsubscribe();
    for (const t of this.topics.values()) t.off();
    this.topics.clear();
    for (const [id, ask] of this.asks) {
      clearTimeout(ask.timer);
      ask.reject(new ActorSystemStoppedError(this.nodeId));
      this.asks.delete(id);
    }
    for (const cell of this.cells.values()) cell.stopped = true;
    for (const cell of byDepth([...this.cells.values()])) cell.terminate();
    (nact as unknown as { stop(ref: object): void }).stop(this.nactSystem);
    // Let the actors' stopped hooks (scheduled by nact) run before the caller goes on.
    await new Promise((r) => setImmediate(r));
    this.wire.close();
    if (this.opts.ownsTransport) await this.opts.transport.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ---- sending ----

  private nextId(): string {
    return this.idPrefix + (this.seq++).toString(36);
  }

  private send(
    to: string,
    msg: Message,
    meta: { from?: string; id?: string; corr?: string; deadline?: number },
  ): void {
    if (this.isStopped) {
      this.deadLetters.record({ to, from: meta.from, type: msg.type, reason: "system-stopped" });
      return;
    }
    const { node, path } = parseAddress(to);
    const id = meta.id ?? this.nextId();
    if (node === this.nodeId) {
      this.dispatchLocal(
        path,
        msg,
        { msg, from: meta.from, id, ask: meta.deadline !== undefined },
        meta.corr,
        to,
      );
      return;
    }
    const env: Envelope = {
      v: 1,
      type: msg.type,
      from: meta.from ?? formatAddress(this.nodeId, "$anon"),
      to,
      id,
      inc: this.incarnation,
      body: msg,
    };
    if (meta.corr !== undefined) env.corr = meta.corr;
    if (meta.deadline !== undefined) env.deadline = meta.deadline;
    this.wire.send(this.nodeSubject(node), env);
  }

  private ask<R extends Message>(address: string, msg: Message, o: AskOptions): Promise<R> {
    if (!(o?.timeoutMs > 0)) return Promise.reject(new RangeError("ask needs a positive timeoutMs"));
    if (this.isStopped) return Promise.reject(new ActorSystemStoppedError(this.nodeId));
    const id = this.nextId();
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.asks.delete(id);
        reject(new AskTimeoutError(address, msg.type, o.timeoutMs));
      }, o.timeoutMs);
      this.asks.set(id, { resolve: resolve as (m: Message) => void, reject, timer, address });
      try {
        this.send(address, msg, {
          from: formatAddress(this.nodeId, ASK_PATH),
          id,
          deadline: Date.now() + o.timeoutMs,
        });
      } catch (error) {
        clearTimeout(timer);
        this.asks.delete(id);
        reject(error);
      }
    });
  }

  /** @internal Sends a reply for a delivery. */
  replyTo(delivery: Delivery, msg: Message, fromPath: string): void {
    if (!delivery.from) {
      this.deadLetters.record({ to: "(nobody)", type: msg.type, reason: "no-reply-address" });
      return;
    }
    this.send(delivery.from, msg, { from: formatAddress(this.nodeId, fromPath), corr: delivery.id });
  }

  /** @internal Rejects an ask with a typed failure. */
  failAsk(
    delivery: Delivery,
    code:
      | "actor-failed"
      | "stopped"
      | "no-such-actor"
      | "bad-input"
      | "unknown-kind"
      | "spawn-failed"
      | "actor-exists",
    message: string,
  ): void {
    if (!delivery.from || !delivery.ask) return;
    this.send(delivery.from, { type: "sys.failure", code, message: message.slice(0, 4000) } as Message, {
      from: formatAddress(this.nodeId, SYS_PATH),
      corr: delivery.id,
    });
  }

  // ---- receiving ----

  private onInbound(env: Envelope, subject: string): void {
    const reason = this.fence?.(env);
    if (reason) {
      this.wire.reportBadInput(
        reason,
        subject,
        `fenced off ${env.type} from ${env.from} (incarnation ${env.inc ?? "?"})`,
      );
      this.deadLetters.record({ to: env.to, from: env.from, type: env.type, reason });
      return;
    }
    let path: string;
    try {
      const addr = parseAddress(env.to);
      if (addr.node !== this.nodeId) throw new Error(`addressed to node ${addr.node}`);
      path = addr.path;
    } catch (error) {
      this.wire.reportBadInput(
        "bad-envelope",
        subject,
        `bad destination "${env.to.slice(0, 200)}": ${(error as Error).message}`,
      );
      return;
    }
    const delivery: Delivery = {
      msg: env.body as Message,
      from: env.from,
      id: env.id,
      ask: env.deadline !== undefined,
    };
    let msg: Message;
    try {
      msg = decodeBody<Message>(env, this.registry, subject);
    } catch (error) {
      if (!(error instanceof MessageDecodeError)) throw error;
      this.wire.reportBadInput(error.reason, subject, `${error.message} (from ${env.from})`);
      this.deadLetters.record({ to: env.to, from: env.from, type: env.type, reason: error.reason });
      this.failAsk(delivery, "bad-input", error.message);
      return;
    }
    delivery.msg = msg;
    this.dispatchLocal(path, msg, delivery, env.corr, env.to);
  }

  private dispatchLocal(
    path: string,
    msg: Message,
    delivery: Delivery,
    corr: string | undefined,
    to: string,
  ): void {
    if (path === ASK_PATH) return this.settleAsk(corr, msg, to);
    if (path === SYS_PATH) return this.onSystemMessage(msg, delivery);
    const cell = this.cells.get(path);
    if (!cell || cell.stopped) {
      this.deadLetter(delivery, to, cell ? "stopped" : "no-such-actor");
      this.failAsk(delivery, "no-such-actor", `no actor at ${to}`);
      return;
    }
    cell.dispatch(delivery);
  }

  private settleAsk(corr: string | undefined, msg: Message, to: string): void {
    const pending = corr === undefined ? undefined : this.asks.get(corr);
    if (!pending) {
      this.deadLetters.record({ to, type: msg.type, reason: "late-reply" });
      return;
    }
    this.asks.delete(corr!);
    clearTimeout(pending.timer);
    if (msg.type === "sys.failure") {
      const f = msg as Message & { code: string; message: string };
      pending.reject(
        f.code === "no-such-actor"
          ? new ActorNotFoundError(pending.address, f.message)
          : f.code === "actor-exists"
            ? new ActorExistsError(pending.address, f.message)
            : new RemoteActorError(pending.address, f.code, f.message),
      );
    } else {
      pending.resolve(msg);
    }
  }

  private onSystemMessage(msg: Message, delivery: Delivery): void {
    switch (msg.type) {
      case "sys.spawn":
        return this.onSpawnRequest(msg as SpawnActor, delivery);
      case "sys.stop": {
        const path = (msg as Message & { path: string }).path;
        const cell = this.cells.get(path);
        if (!cell || cell.stopped)
          return this.failAsk(delivery, "no-such-actor", `no actor at ${formatAddress(this.nodeId, path)}`);
        cell.stop();
        return this.replyTo(delivery, { type: "sys.ack" }, SYS_PATH);
      }
      case "sys.ping":
        return this.replyTo(
          delivery,
          { type: "sys.pong", node: this.nodeId, inc: this.incarnation } as Message,
          SYS_PATH,
        );
      default:
        this.deadLetter(delivery, formatAddress(this.nodeId, SYS_PATH), "unexpected-system-message");
    }
  }

  private onSpawnRequest(req: SpawnActor, delivery: Delivery): void {
    const kind = this.kinds.get(req.kind);
    if (!kind)
      return this.failAsk(
        delivery,
        "unknown-kind",
        new UnknownActorKindError(req.kind, [...this.kinds.keys()]).message,
      );
    const args = kind.args.safeParse(req.args);
    if (!args.success)
      return this.failAsk(delivery, "bad-input", `bad args for kind ${req.kind}: ${args.error.message}`);
    try {
      const slash = req.name.lastIndexOf("/");
      let ref: ActorRef;
      if (slash < 0) {
        ref = this.spawn(kind.create(args.data, this), { name: req.name, supervision: kind.supervision });
      } else {
        const parent = this.cells.get(req.name.slice(0, slash));
        if (!parent || parent.stopped)
          return this.failAsk(delivery, "no-such-actor", `no parent actor for ${req.name}`);
        ref = this.spawnChild(parent, kind.create(args.data, this), {
          name: req.name.slice(slash + 1),
          supervision: kind.supervision,
        });
      }
      this.replyTo(delivery, { type: "sys.spawned", address: ref.address } as Message, SYS_PATH);
    } catch (error) {
      const code = error instanceof ActorExistsError ? "actor-exists" : "spawn-failed";
      this.failAsk(delivery, code, (error as Error).message);
    }
  }

  // ---- CellHost ----

  /** @internal */
  register(cell: Cell): void {
    this.cells.set(cell.path, cell);
    this.metrics.inc("flock_actors_spawned_total", {}, 1, "Local actors spawned");
  }

  /** @internal */
  unregister(cell: Cell): void {
    if (this.cells.get(cell.path) === cell) this.cells.delete(cell.path);
  }

  /** @internal Marks a path (or, ending in `/`, every path below it) stopped at once, before nact's asynchronous stop completes. */
  markStopped(path: string): void {
    if (path.endsWith("/")) {
      for (const [p, c] of this.cells) if (p.startsWith(path)) c.stopped = true;
      return;
    }
    const cell = this.cells.get(path);
    if (cell) cell.stopped = true;
    this.markStopped(`${path}/`);
  }

  /** @internal */
  stopDescendants(path: string): void {
    const prefix = `${path}/`;
    for (const cell of byDepth([...this.cells.values()].filter((c) => c.path.startsWith(prefix))))
      cell.terminate();
  }

  /** @internal */
  deadLetter(delivery: Delivery, to: string, reason: string): void {
    this.deadLetters.record({ to, from: delivery.from, type: delivery.msg.type, reason });
  }

  /** @internal */
  emit(event: ActorEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (error) {
        setImmediate(() => this.log.warn({ err: error }, "actor event listener threw"));
      }
    }
  }
}

/** Cells deepest first, so children stop before their parents. */
function byDepth(cells: Cell[]): Cell[] {
  const depth = (c: Cell) => c.path.split("/").length;
  return cells.sort((a, b) => depth(b) - depth(a));
}
