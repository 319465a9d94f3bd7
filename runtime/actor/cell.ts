import nact from "nact";
import type { Logger } from "../log.js";
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
  spawnChild(parent: Cell, behavior: Behavior<Message, unknown>, opts: SpawnOptions): ActorRef;
  unregister(cell: Cell): void;
  markStopped(path: string): void;
  deadLetter(delivery: Delivery, to: string, reason: string): void;
  emit(event: ActorEvent): void;
}

// nact ships no usable types for its internals; this is the slice of its API the runtime uses.
type NactRef = object;
type NactCtx = {
  self: NactRef;
  mailbox?: Array<{ message: Delivery }>;
  reset: symbol;
  resume: symbol;
  stop: symbol;
  escalate: symbol;
  stopChild: symbol;
};
const n = nact as unknown as {
  spawn(parent: NactRef, f: (state: unknown, msg: Delivery, ctx: NactCtx) => unknown, name: string, props: object): NactRef;
  dispatch(ref: NactRef, msg: Delivery): void;
  stop(ref: NactRef): void;
};

/**
 * A local actor: our behaviour running inside one nact actor. nact brings the mailbox, one message
 * at a time and the supervision tree; the cell adds restart intensity and backoff, asks that fail
 * fast when the actor crashes, and dead letters for what a stopped actor never read.
 */
export class Cell {
  stopped = false;
  readonly address: string;
  nactRef!: NactRef;
  private readonly tracker: RestartTracker;
  readonly self: ActorRef;

  constructor(
    private readonly host: CellHost,
    readonly path: string,
    parentRef: NactRef,
    private readonly behavior: Behavior<Message, unknown>,
    policy: SupervisionPolicy,
  ) {
    this.address = `${host.nodeId}/${path}`;
    this.self = host.ref(this.address);
    this.tracker = new RestartTracker(policy);
    host.register(this);
    n.spawn(parentRef, (state, delivery) => this.handle(state, delivery), path.slice(path.lastIndexOf("/") + 1), {
      initialStateFunc: (ctx: NactCtx) => {
        // init runs inside nact's constructor, before spawn returns: take our nact ref from its context
        // so that init can spawn children.
        this.nactRef = ctx.self;
        return behavior.init?.(this.context(undefined));
      },
      onCrash: (_msg: Delivery, error: Error, ctx: NactCtx, child?: unknown) => this.onCrash(error, ctx, child),
      afterStop: (state: unknown, ctx: NactCtx) => this.afterStop(state, ctx),
    });
    host.emit({ kind: "spawned", path });
  }

  /** Queues a message; the caller has checked the cell is alive. */
  dispatch(delivery: Delivery): void {
    n.dispatch(this.nactRef, delivery);
  }

  /** Stops the actor and its children. */
  stop(): void {
    if (this.stopped) return;
    this.host.markStopped(this.path);
    n.stop(this.nactRef);
  }

  private async handle(state: unknown, delivery: Delivery): Promise<unknown> {
    try {
      const next = await this.behavior.receive(state, delivery.msg, this.context(delivery));
      return next === undefined ? state : next;
    } catch (error) {
      if (delivery.ask) this.host.failAsk(delivery, "actor-failed", (error as Error)?.message ?? String(error));
      throw error;
    }
  }

  private async onCrash(error: Error, ctx: NactCtx, child: unknown): Promise<symbol> {
    const err = error instanceof Error ? error : new Error(String(error));
    const decision = this.tracker.decide();
    const path = this.path;
    switch (decision.action) {
      case "restart":
        this.host.log.warn({ path, err, delayMs: decision.delayMs, escalatedFromChild: Boolean(child) }, "actor failed; restarting");
        if (decision.delayMs > 0) await new Promise((r) => setTimeout(r, decision.delayMs));
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

  private afterStop(state: unknown, ctx: NactCtx): void {
    this.stopped = true;
    this.host.unregister(this);
    for (const { message } of ctx.mailbox ?? []) {
      this.host.deadLetter(message, this.address, "stopped");
      if (message.ask) this.host.failAsk(message, "stopped", `${this.address} stopped before reading the message`);
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
    const cell = this;
    return {
      self: this.self,
      from: delivery?.from,
      isAsk: delivery?.ask ?? false,
      log: host.log,
      nodeId: host.nodeId,
      reply(msg) {
        if (!delivery) throw new Error("reply() outside of a message");
        host.replyTo(delivery, msg, cell.path);
      },
      ref: (address) => host.ref(address),
      spawn: (behavior, opts: SpawnOptions) => host.spawnChild(cell, behavior as Behavior<Message, unknown>, opts) as never,
      stop: () => cell.stop(),
    };
  }
}
