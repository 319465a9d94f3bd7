import {
  ActorSpawned,
  SYSTEM_MESSAGES,
  MessageRegistry,
  type Failure,
  type SpawnActor,
  type StopActor,
} from "../../messages/index.js";
import { silentLogger, type Logger } from "../log.js";
import { Metrics } from "../metrics.js";
import type { Unsubscribe } from "../transport/index.js";
import { Wire } from "../wire.js";
import { formatAddress, isValidSegment, parseAddress } from "./address.js";
import { isValidNodeId, nodeInbox, nodeSubject, senderOf, topicPattern, topicSubject } from "./subjects.js";
import { PendingAsks } from "./asks.js";
import { Cell, type CellHost, type Delivery } from "./cell.js";
import { CellTable } from "./cell-table.js";
import { DeadLetters } from "./dead-letters.js";
import {
  ActorExistsError,
  ActorSystemStoppedError,
  InvalidActorNameError,
  RemoteActorError,
} from "./errors.js";
import { Inbound } from "./inbound.js";
import { KindTable, type ActorKind } from "./kinds.js";
import { nactApi, type NactCtx, type NactRef } from "./nact.js";
import { SYS_PATH, type ActorSystemOptions, type Fence, type Origin } from "./options.js";
import { Outbound } from "./outbound.js";
import { supervision } from "./supervision.js";
import { SystemService } from "./sys-service.js";
import { TopicSubscriptions } from "./topics.js";
import type { ActorEvent, ActorRef, AskOptions, Behavior, Message, SpawnOptions } from "./types.js";
import { randomUUID } from "node:crypto";

export type { ActorSystemOptions, Fence } from "./options.js";

/**
 * One node's actors. Local actors run on nact with supervision; `tell` and `ask` reach local and
 * remote actors alike (location transparency): a remote address is encoded and published on the
 * target node's subject, where that node's gateway checks it and dispatches it through an explicit
 * registry. Undeliverable messages become dead letters; bad input is counted and refused.
 *
 * The system owns the actors' lifecycle; sending is {@link Outbound}'s, receiving {@link Inbound}'s,
 * and `sys.*` requests {@link SystemService}'s.
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
  private readonly cells = new CellTable();
  private readonly kinds = new KindTable<ActorSystem>(this);
  private readonly asks = new PendingAsks();
  private readonly listeners = new Set<(e: ActorEvent) => void>();
  private readonly out: Outbound;
  private readonly inbound: Inbound;
  private readonly topics: TopicSubscriptions;
  private readonly nactSystem: NactRef;
  private readonly guardian: NactRef;
  private readonly unsubscribe: Unsubscribe;
  private isStopped = false;

  private constructor(private readonly opts: ActorSystemOptions) {
    // A node id is one subject token (the sender token NATS permissions bind to a user): no dots.
    if (!isValidNodeId(opts.nodeId))
      throw new Error(`invalid node id "${opts.nodeId}": use 1-128 letters, digits, _ $ : -`);
    this.nodeId = opts.nodeId;
    this.cluster = opts.cluster ?? "default";
    if (!/^[A-Za-z0-9_-]+$/.test(this.cluster))
      throw new Error(`invalid cluster name "${this.cluster}": use letters, digits, _ -`);
    this.incarnation = opts.incarnation ?? randomUUID().slice(0, 13);
    this.log = opts.log ?? silentLogger();
    this.metrics = opts.metrics ?? new Metrics();
    this.deadLetters = new DeadLetters(this.metrics);
    this.wire = new Wire(opts.transport, this.metrics, this.log, opts.wireLimits, { senderOf });
    const sys = new SystemService(this, this.cells, this.kinds, (path, name) => this.checkSpawn(path, name));
    this.inbound = new Inbound(this, this.cells, this.asks, (msg, delivery) => sys.handle(msg, delivery));
    const dispatch = this.inbound.dispatchLocal.bind(this.inbound);
    this.out = new Outbound(this, this.asks, opts.checkLocalSends ?? false, dispatch);
    this.topics = new TopicSubscriptions((topic, paths) =>
      this.wire.listen(topicPattern(this.cluster, topic), (env, subject) =>
        this.inbound.onTopic(env, subject, paths),
      ),
    );
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
    this.unsubscribe = this.wire.listen(nodeInbox(this.cluster, this.nodeId), (env, subject) =>
      this.inbound.onEnvelope(env, subject),
    );
  }

  /** Starts a node's actor system on a connected transport. */
  static async start(opts: ActorSystemOptions): Promise<ActorSystem> {
    const system = new ActorSystem(opts);
    await opts.transport.flush();
    return system;
  }

  /**
   * The subject actor messages from `from` (default: this node) to node `to` travel on; `to`
   * listens on all of them and checks each envelope's `from` against the sender token.
   */
  nodeSubject(to: string, from: string = this.nodeId): string {
    return nodeSubject(this.cluster, to, from);
  }

  /** The subject this node publishes a topic's messages on. */
  topicSubject(topic: string): string {
    return topicSubject(this.cluster, topic, this.nodeId);
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
    if (this.cells.live(path)) throw new ActorExistsError(formatAddress(this.nodeId, path));
  }

  private spawnCell<M extends Message>(
    path: string,
    parentRef: NactRef,
    // Any behaviour fits a cell: `receive` is a method, so its message parameter is checked bivariantly.
    behavior: Behavior<Message, unknown>,
    opts: SpawnOptions,
  ): ActorRef<M> {
    this.checkSpawn(path, opts.name);
    const cell = new Cell(this, path, parentRef, behavior, supervision(opts.supervision), opts.mailboxLimit);
    return this.ref<M>(cell.address);
  }

  /** A ref to any address; remote refs cost nothing until used. */
  ref<M extends Message = Message>(address: string): ActorRef<M> {
    parseAddress(address);
    return {
      address,
      tell: (msg, from) =>
        this.out.send(address, msg, { from: typeof from === "string" ? from : from?.address }),
      // The reply's type is the asker's claim: the reply was checked against the registry's schema
      // (always when remote; locally with checkLocalSends), not against R itself.
      ask: <R extends Message>(msg: M, o: AskOptions) => this.out.ask(address, msg, o) as Promise<R>,
    };
  }

  /** Whether a local actor lives at this path. */
  has(path: string): boolean {
    return this.cells.live(path) !== undefined;
  }

  /** Paths of the live local actors. */
  paths(): string[] {
    return this.cells.paths();
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
    const reply = ActorSpawned.safeParse(await this.out.ask(formatAddress(nodeId, SYS_PATH), request, o));
    if (!reply.success) throw new RemoteActorError(nodeId, "spawn-failed", "unexpected reply to sys.spawn");
    return this.ref<M>(reply.data.address);
  }

  /** Asks a node to stop one of its actors. */
  async stopRemote(address: string, o: AskOptions): Promise<void> {
    const { node, path } = parseAddress(address);
    const request: StopActor = { type: "sys.stop", path };
    await this.out.ask(formatAddress(node, SYS_PATH), request, o);
  }

  /**
   * Publishes a message to every actor subscribed to a topic, on any node: one publish, fanned out
   * by the transport (NATS does the all-gather's fan-out).
   */
  publish<M extends Message>(topic: string, msg: M): void {
    this.out.publish(topic, msg);
  }

  /** Subscribes a local actor to a topic; its mailbox receives each published message. */
  subscribeTopic(topic: string, ref: ActorRef): Unsubscribe {
    const { node, path } = parseAddress(ref.address);
    if (node !== this.nodeId)
      throw new Error(`only local actors can subscribe here; ${ref.address} is on ${node}`);
    return this.topics.subscribe(topic, path);
  }

  /** Installs the fencing check applied to every inbound envelope (membership sets it). */
  setFence(fence: Fence | undefined): void {
    this.inbound.fence = fence;
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
    this.topics.closeAll();
    this.asks.rejectAll(new ActorSystemStoppedError(this.nodeId));
    this.cells.stopAll();
    nactApi.stop(this.nactSystem);
    // Let the actors' stopped hooks (scheduled by nact) run before the caller goes on.
    await new Promise((r) => setImmediate(r));
    this.wire.close();
    if (this.opts.ownsTransport) await this.opts.transport.close();
  }

  /** Stops the system (`await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  // ---- CellHost ----

  /** @internal Sends a reply for a delivery. */
  replyTo(delivery: Delivery, msg: Message, fromPath: string): void {
    this.out.replyTo(delivery, msg, fromPath);
  }

  /** @internal Rejects an ask with a typed failure. */
  failAsk(delivery: Origin, code: Failure["code"], message: string): void {
    this.out.failAsk(delivery, code, message);
  }

  /** @internal */
  register(cell: Cell): void {
    this.cells.add(cell);
    this.metrics.inc("flock_actors_spawned_total", {}, 1, "Local actors spawned");
  }

  /** @internal */
  unregister(cell: Cell): void {
    this.cells.remove(cell);
  }

  /** @internal Marks a path (or, ending in `/`, every path below it) stopped at once, before nact's asynchronous stop completes. */
  markStopped(path: string): void {
    this.cells.markStopped(path);
  }

  /** @internal */
  stopDescendants(path: string): void {
    this.cells.stopDescendants(path);
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
