import type { Logger } from "../log.js";
import { nactApi as n, type NactCtx, type NactRef } from "./nact.js";
import { RestartTracker, type SupervisionPolicy } from "./supervision.js";
import type { ActorContext, ActorEvent, ActorRef, Behavior, Message, SpawnOptions } from "./types.js";

/** One message on its way into an actor, with who sent it and whether someone waits. */
export interface Delivery {
  msg: Message;
  from?: string;
  id?: string;
  ask: boolean;
}

/** What a cell needs from its actor system. */
export interface CellHost {
  readonly nodeId: string;
  readonly log: Logger;
  ref<T extends Message>(address: string): ActorRef<T>;
  replyTo(delivery: Delivery, msg: Message, fromPath: string): void;
  failAsk(delivery: Delivery, code: "actor-failed" | "stopped", message: string): void;
  register(cell: Cell): void;
  spawnChild<T extends Message, S>(parent: Cell, behavior: Behavior<T, S>, opts: SpawnOptions): ActorRef<T>;
  unregister(cell: Cell): void;
  markStopped(path: string): void;
  /** Stops every live cell below `path`, deepest first. */
  stopDescendants(path: string): void;
  deadLetter(delivery: Delivery, to: string, reason: string): void;
  emit(event: ActorEvent): void;
}

/** The one message a cell ever hands nact: "read your mailbox". */
const DRAIN = Object.freeze({ drain: true });
/** Most messages read in one nact turn, and the time after which a turn yields to the event loop. */
const MAX_BATCH = 64;
const MAX_TURN_MS = 2;
/**
 * Messages an actor's mailbox holds when its spawn options name no bound. nact's mailboxes have
 * none, and a peer can send faster than an actor reads: past the bound the newest message is
 * dead-lettered (`mailbox-full`) and an ask fails at once. 10 000 is far above what a training
 * actor queues in a step (a reducer: one slice per member and a commit; a trainer: its slices).
 */
export const DEFAULT_MAILBOX_LIMIT = 10_000;

/**
 * A local actor: our behaviour running inside one nact actor. nact brings the mailbox, one message
 * at a time and the supervision tree; the cell adds restart intensity and backoff, asks that fail
 * fast when the actor crashes, and dead letters for what a stopped actor never read.
 *
 * The cell keeps its own FIFO mailbox and hands nact a drain token, not each message: nact runs
 * every message in its own `setImmediate`, one event-loop turn per message, which capped a remote
 * actor at about 160k small messages/s (measured by `flock bench`). A drain reads up to
 * {@link MAX_BATCH} messages (or {@link MAX_TURN_MS}) in one turn, one at a time and in arrival
 * order, then yields. A message that throws ends the turn; the state left by the messages before
 * it is carried into the next turn, so `resume` keeps it exactly as nact would have.
 */
export class Cell {
  stopped = false;
  private afterStopped = false;
  readonly address: string;
  nactRef!: NactRef;
  private readonly tracker: RestartTracker;
  readonly self: ActorRef;
  private readonly mailbox = new Mailbox();
  /** A drain token is in nact's mailbox or being handled. */
  private scheduled = false;
  /** State after the last message that succeeded in a turn that then failed. */
  private carried: { state: unknown } | undefined;

  constructor(
    private readonly host: CellHost,
    readonly path: string,
    parentRef: NactRef,
    private readonly behavior: Behavior<Message, unknown>,
    policy: SupervisionPolicy,
    private readonly mailboxLimit = DEFAULT_MAILBOX_LIMIT,
  ) {
    this.address = `${host.nodeId}/${path}`;
    this.self = host.ref(this.address);
    this.tracker = new RestartTracker(policy);
    host.register(this);
    n.spawn(parentRef, (state) => this.drain(state), path.slice(path.lastIndexOf("/") + 1), {
      initialStateFunc: (ctx: NactCtx) => {
        // init runs inside nact's constructor, before spawn returns: take our nact ref from its context
        // so that init can spawn children.
        this.nactRef = ctx.self;
        return behavior.init?.(this.context(undefined));
      },
      onCrash: (_msg: unknown, error: Error, ctx: NactCtx, child?: unknown) =>
        this.onCrash(error, ctx, child),
      afterStop: (state: unknown, ctx: NactCtx) => this.afterStop(state, ctx),
    });
    host.emit({ kind: "spawned", path });
  }

  /**
   * Queues a message; the caller has checked the cell is alive. A full mailbox drops the newest
   * message (this one) to dead letters, and fails it at once when someone waits for an answer.
   * Stops and the system service's messages never pass through here, so they are never dropped.
   */
  dispatch(delivery: Delivery): void {
    if (this.mailbox.size >= this.mailboxLimit) {
      this.host.deadLetter(delivery, this.address, "mailbox-full");
      if (delivery.ask)
        this.host.failAsk(
          delivery,
          "actor-failed",
          `${this.address}: mailbox full (${this.mailboxLimit} messages)`,
        );
      return;
    }
    this.mailbox.push(delivery);
    if (!this.scheduled) {
      this.scheduled = true;
      n.dispatch(this.nactRef, DRAIN);
    }
  }

  /** Stops the actor and its children. */
  stop(): void {
    if (this.stopped) return;
    this.host.markStopped(this.path);
    this.host.stopDescendants(this.path);
    n.stop(this.nactRef);
  }

  /**
   * Stops the nact actor whatever this cell's flag says. nact's own recursive stop hands actor
   * objects where references are expected and so never reaches the children: the runtime stops
   * every cell itself, deepest first.
   */
  terminate(): void {
    this.stopped = true;
    n.stop(this.nactRef);
  }

  /** One nact turn: reads queued messages in order until the mailbox is empty or the turn's budget is spent. */
  private async drain(state: unknown): Promise<unknown> {
    if (this.carried) {
      state = this.carried.state;
      this.carried = undefined;
    }
    const started = performance.now();
    for (let handled = 0; handled < MAX_BATCH && !this.stopped; handled++) {
      const delivery = this.mailbox.shift();
      if (!delivery) break;
      try {
        const next = this.handle(state, delivery);
        state = isThenable(next) ? await next : next;
      } catch (error) {
        this.carried = { state };
        this.reschedule();
        throw error;
      }
      if (performance.now() - started > MAX_TURN_MS) break;
    }
    this.reschedule();
    return state;
  }

  private reschedule(): void {
    if (this.mailbox.size > 0 && !this.stopped) n.dispatch(this.nactRef, DRAIN);
    else this.scheduled = false;
  }

  /** Runs the behaviour on one message; a promise only when the behaviour returned one (no microtask per synchronous message). */
  private handle(state: unknown, delivery: Delivery): unknown {
    let result: unknown;
    try {
      result = this.behavior.receive(state, delivery.msg, this.context(delivery));
    } catch (error) {
      this.failedOn(delivery, error);
      throw error;
    }
    if (!isThenable(result)) return result === undefined ? state : result;
    return result.then(
      (next: unknown) => (next === undefined ? state : next),
      (error: unknown) => {
        this.failedOn(delivery, error);
        throw error;
      },
    );
  }

  private failedOn(delivery: Delivery, error: unknown): void {
    if (delivery.ask) this.host.failAsk(delivery, "actor-failed", (error as Error)?.message ?? String(error));
  }

  private async onCrash(error: Error, ctx: NactCtx, child: unknown): Promise<symbol> {
    const err = error instanceof Error ? error : new Error(String(error));
    const decision = this.tracker.decide();
    const path = this.path;
    switch (decision.action) {
      case "restart":
        this.host.log.warn(
          { path, err, delayMs: decision.delayMs, escalatedFromChild: Boolean(child) },
          "actor failed; restarting",
        );
        if (decision.delayMs > 0) await new Promise((r) => setTimeout(r, decision.delayMs));
        this.carried = undefined;
        this.markDescendantsStopped();
        this.host.emit({ kind: "restarted", path, error: err, delayMs: decision.delayMs });
        return ctx.reset;
      case "resume":
        this.host.log.warn({ path, err }, "actor failed; resuming");
        this.host.emit({ kind: "resumed", path, error: err });
        return ctx.resume;
      case "stop":
        this.host.log.warn({ path, err }, "actor failed; stopping");
        this.host.emit({ kind: "failed", path, error: err });
        this.host.markStopped(path);
        return ctx.stop;
      case "escalate":
        this.host.log.warn({ path, err }, "actor failed past its restart intensity; escalating");
        this.host.emit({ kind: "escalated", path, error: err });
        return ctx.escalate;
    }
  }

  private markDescendantsStopped(): void {
    this.host.markStopped(`${this.path}/`);
  }

  private afterStop(nactState: unknown, _ctx: NactCtx): void {
    if (this.afterStopped) return;
    this.afterStopped = true;
    this.stopped = true;
    this.host.stopDescendants(this.path);
    this.host.unregister(this);
    const state = this.carried ? this.carried.state : nactState;
    this.carried = undefined;
    for (let message = this.mailbox.shift(); message; message = this.mailbox.shift()) {
      this.host.deadLetter(message, this.address, "stopped");
      if (message.ask)
        this.host.failAsk(message, "stopped", `${this.address} stopped before reading the message`);
    }
    try {
      this.behavior.stopped?.(state, this.context(undefined));
    } catch (error) {
      this.host.log.warn({ path: this.path, err: error }, "actor's stopped hook threw");
    }
    this.host.emit({ kind: "stopped", path: this.path });
  }

  /** The context handed to behaviour code. */
  context(delivery: Delivery | undefined): ActorContext<Message> {
    const host = this.host;
    return {
      self: this.self,
      from: delivery?.from,
      isAsk: delivery?.ask ?? false,
      log: host.log,
      nodeId: host.nodeId,
      reply: (msg) => {
        if (!delivery) throw new Error("reply() outside of a message");
        host.replyTo(delivery, msg, this.path);
      },
      ref: (address) => host.ref(address),
      spawn: (behavior, opts: SpawnOptions) => host.spawnChild(this, behavior, opts),
      stop: () => this.stop(),
    };
  }
}

/** Whether `await` would wait on this value. */
function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (
    (typeof x === "object" || typeof x === "function") &&
    x !== null &&
    typeof (x as PromiseLike<unknown>).then === "function"
  );
}

/** A FIFO queue with O(1) push and shift. */
class Mailbox {
  private items: Array<Delivery | undefined> = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(d: Delivery): void {
    this.items.push(d);
  }

  shift(): Delivery | undefined {
    if (this.head >= this.items.length) return undefined;
    const d = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return d;
  }
}
