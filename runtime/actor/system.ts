import {
  ActorSpawned,
  SYSTEM_MESSAGES,
  MessageRegistry,
  SystemMessage,
  checkBody,
  decodeBody,
  MessageDecodeError,
  type Envelope,
  type Failure,
  type Pong,
  type SpawnActor,
  type StopActor,
} from "../../messages/index.js";
import { silentLogger, type Logger } from "../log.js";
import { Metrics } from "../metrics.js";
import type { Transport, Unsubscribe } from "../transport/index.js";
import { Wire, type WireLimits } from "../wire.js";
import { formatAddress, isValidSegment, parseAddress } from "./address.js";
import { PendingAsks } from "./asks.js";
import { Cell, type CellHost, type Delivery } from "./cell.js";
import { DeadLetters } from "./dead-letters.js";
import {
  ActorExistsError,
  ActorSystemStoppedError,
  InvalidActorNameError,
  RemoteActorError,
  UnknownActorKindError,
} from "./errors.js";
import { KindTable, type ActorKind } from "./kinds.js";
import { nactApi, type NactCtx, type NactRef } from "./nact.js";
import { supervision } from "./supervision.js";
import type { ActorEvent, ActorRef, AskOptions, Behavior, Message, SpawnOptions } from "./types.js";
import { randomUUID } from "node:crypto";

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
  /**
   * Debugging aid for tests: check every local tell, ask and reply against the message registry's
   * schema, as a remote one is, and refuse a failing one the same way (bad input, dead letter, a
   * failed ask). Off by default: a local send otherwise skips the schema (and its cost).
   */
  checkLocalSends?: boolean;
}

/** Decides whether an inbound envelope is fenced off; returns the reason or undefined. */
export type Fence = (env: Envelope) => "stale-incarnation" | "stale-epoch" | undefined;

/** Who sent a message and whether they wait for a reply: enough to answer it with a failure. */
type Origin = Pick<Delivery, "from" | "id" | "ask">;

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
  private readonly kinds = new KindTable<ActorSystem>(this);
  private readonly asks = new PendingAsks();
  private readonly listeners = new Set<(e: ActorEvent) => void>();
  private readonly nactSystem: NactRef;
  private readonly guardian: NactRef;
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
    this.nactSystem = nactApi.start({ name: `${this.nodeId}:${this.incarnation}` });
    this.guardian = nactApi.spawn(this.nactSystem, (s: unknown) => s, "user", {
      onCrash: (_m: unknown, error: Error, ctx: NactCtx, child?: { name: string }) => {
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
    return this.spawnCell<M>(opts.name, this.guardian, behavior, opts);
  }

  /** @internal Spawns a child of a local actor (through its context). */
  spawnChild<M extends Message, S>(parent: Cell, behavior: Behavior<M, S>, opts: SpawnOptions): ActorRef<M> {
    return this.spawnCell<M>(`${parent.path}/${opts.name}`, parent.nactRef, behavior, opts);
  }

  /** Refuses a spawn onto a stopped system, a bad name or a live actor's path; throws the typed error. */
  private checkSpawn(path: string, name: string): void {
    if (this.isStopped) throw new ActorSystemStoppedError(this.nodeId);
    if (!isValidSegment(name)) throw new InvalidActorNameError(name);
    if (this.cells.get(path)?.stopped === false) throw new ActorExistsError(formatAddress(this.nodeId, path));
  }

  private spawnCell<M extends Message>(
    path: string,
    parentRef: NactRef,
    // Any behaviour fits a cell: `receive` is a method, so its message parameter is checked bivariantly.
    behavior: Behavior<Message, unknown>,
    opts: SpawnOptions,
  ): ActorRef<M> {
    this.checkSpawn(path, opts.name);
    const cell = new Cell(this, path, parentRef, behavior, supervision(opts.supervision));
    return this.ref<M>(cell.address);
  }

  /** A ref to any address; remote refs cost nothing until used. */
  ref<M extends Message = Message>(address: string): ActorRef<M> {
    parseAddress(address);
    return {
      address,
      tell: (msg, from) => this.send(address, msg, { from: typeof from === "string" ? from : from?.address }),
      // The reply's type is the asker's claim: the reply was checked against the registry's schema
      // (always when remote; locally with checkLocalSends), not against R itself.
      ask: <R extends Message>(msg: M, o: AskOptions) => this.ask(address, msg, o) as Promise<R>,
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

  /** Registers an actor kind that remote nodes may spawn here by name; `create` gets the arguments as `args` parsed them. */
  registerKind<A, M extends Message, S>(kind: string, def: ActorKind<A, M, S, ActorSystem>): void {
    this.kinds.register(kind, def);
  }

  /** Asks a node (this one or another) to spawn an actor of a registered kind. */
  async spawnRemote<M extends Message = Message>(
    nodeId: string,
    kind: string,
    name: string,
    args: unknown,
    o: AskOptions,
  ): Promise<ActorRef<M>> {
    const request: SpawnActor = { type: "sys.spawn", kind, name, args };
    const reply = ActorSpawned.safeParse(await this.ask(formatAddress(nodeId, SYS_PATH), request, o));
    if (!reply.success) throw new RemoteActorError(nodeId, "spawn-failed", "unexpected reply to sys.spawn");
    return this.ref<M>(reply.data.address);
  }

  /** Asks a node to stop one of its actors. */
  async stopRemote(address: string, o: AskOptions): Promise<void> {
    const { node, path } = parseAddress(address);
    const request: StopActor = { type: "sys.stop", path };
    await this.ask(formatAddress(node, SYS_PATH), request, o);
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
      msg = decodeBody(env, this.registry, subject);
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
    this.asks.rejectAll(new ActorSystemStoppedError(this.nodeId));
    for (const cell of this.cells.values()) cell.stopped = true;
    for (const cell of byDepth([...this.cells.values()])) cell.terminate();
    nactApi.stop(this.nactSystem);
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
      const delivery: Delivery = { msg, from: meta.from, id, ask: meta.deadline !== undefined };
      if (this.opts.checkLocalSends && !this.localSendPasses(delivery, to)) return;
      this.dispatchLocal(path, msg, delivery, meta.corr, to);
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

  /** With {@link ActorSystemOptions.checkLocalSends}: whether a local message passes its schema; refuses it as bad input when not. */
  private localSendPasses(delivery: Delivery, to: string): boolean {
    try {
      checkBody(delivery.msg.type, delivery.msg, this.registry, this.nodeSubject(this.nodeId));
      return true;
    } catch (error) {
      if (!(error instanceof MessageDecodeError)) throw error;
      this.wire.reportBadInput(error.reason, this.nodeSubject(this.nodeId), `local send: ${error.message}`);
      this.deadLetters.record({ to, from: delivery.from, type: delivery.msg.type, reason: error.reason });
      this.failAsk(delivery, "bad-input", error.message);
      return false;
    }
  }

  private ask(address: string, msg: Message, o: AskOptions): Promise<Message> {
    if (!(o?.timeoutMs > 0)) return Promise.reject(new RangeError("ask needs a positive timeoutMs"));
    if (this.isStopped) return Promise.reject(new ActorSystemStoppedError(this.nodeId));
    const id = this.nextId();
    const reply = this.asks.wait(id, address, msg.type, o.timeoutMs);
    try {
      this.send(address, msg, {
        from: formatAddress(this.nodeId, ASK_PATH),
        id,
        deadline: Date.now() + o.timeoutMs,
      });
    } catch (error) {
      this.asks.fail(id, error instanceof Error ? error : new Error(String(error)));
    }
    return reply;
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
  failAsk(delivery: Origin, code: Failure["code"], message: string): void {
    if (!delivery.from || !delivery.ask) return;
    const failure: Failure = { type: "sys.failure", code, message: message.slice(0, 4000) };
    this.send(delivery.from, failure, {
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
    const origin: Origin = { from: env.from, id: env.id, ask: env.deadline !== undefined };
    let msg: Message;
    try {
      msg = decodeBody(env, this.registry, subject);
    } catch (error) {
      if (!(error instanceof MessageDecodeError)) throw error;
      this.wire.reportBadInput(error.reason, subject, `${error.message} (from ${env.from})`);
      this.deadLetters.record({ to: env.to, from: env.from, type: env.type, reason: error.reason });
      this.failAsk(origin, "bad-input", error.message);
      return;
    }
    this.dispatchLocal(path, msg, { ...origin, msg }, env.corr, env.to);
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
    if (!this.asks.settle(corr, msg)) this.deadLetters.record({ to, type: msg.type, reason: "late-reply" });
  }

  private onSystemMessage(raw: Message, delivery: Delivery): void {
    // Remote system messages were decoded already; a local one is checked here (they are rare).
    const parsed = SystemMessage.safeParse(raw);
    if (!parsed.success) {
      this.deadLetter(delivery, formatAddress(this.nodeId, SYS_PATH), "bad-input");
      return this.failAsk(delivery, "bad-input", `malformed ${raw.type}`);
    }
    const msg = parsed.data;
    switch (msg.type) {
      case "sys.spawn":
        return this.onSpawnRequest(msg, delivery);
      case "sys.stop": {
        const cell = this.cells.get(msg.path);
        if (!cell || cell.stopped)
          return this.failAsk(
            delivery,
            "no-such-actor",
            `no actor at ${formatAddress(this.nodeId, msg.path)}`,
          );
        cell.stop();
        return this.replyTo(delivery, { type: "sys.ack" }, SYS_PATH);
      }
      case "sys.ping": {
        const pong: Pong = { type: "sys.pong", node: this.nodeId, inc: this.incarnation };
        return this.replyTo(delivery, pong, SYS_PATH);
      }
      case "sys.spawned":
      case "sys.ack":
      case "sys.pong":
      case "sys.failure":
        return this.deadLetter(delivery, formatAddress(this.nodeId, SYS_PATH), "unexpected-system-message");
    }
  }

  /**
   * Spawns a registered kind for a remote request. Everything that can refuse the spawn (arguments,
   * parent, name, a live actor at the path) is checked before the kind's factory runs: a factory may
   * reserve a slot or start a worker thread, which a refused spawn must not leave behind.
   */
  private onSpawnRequest(req: SpawnActor, delivery: Delivery): void {
    const prepared = this.kinds.prepare(req.kind, req.args);
    if (!prepared)
      return this.failAsk(
        delivery,
        "unknown-kind",
        new UnknownActorKindError(req.kind, this.kinds.names()).message,
      );
    if ("code" in prepared) return this.failAsk(delivery, prepared.code, prepared.message);
    const slash = req.name.lastIndexOf("/");
    const parent = slash < 0 ? undefined : this.cells.get(req.name.slice(0, slash));
    if (slash >= 0 && (!parent || parent.stopped))
      return this.failAsk(delivery, "no-such-actor", `no parent actor for ${req.name}`);
    const opts: SpawnOptions = { name: req.name.slice(slash + 1), supervision: prepared.supervision };
    try {
      this.checkSpawn(parent ? req.name : opts.name, opts.name);
      const behavior = prepared.create();
      const ref = parent ? this.spawnChild(parent, behavior, opts) : this.spawn(behavior, opts);
      const spawned: ActorSpawned = { type: "sys.spawned", address: ref.address };
      this.replyTo(delivery, spawned, SYS_PATH);
    } catch (error) {
      const code = error instanceof ActorExistsError ? "actor-exists" : "spawn-failed";
      this.failAsk(delivery, code, error instanceof Error ? error.message : String(error));
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
