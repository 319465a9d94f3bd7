import {
  SystemMessage,
  type ActorSpawned,
  type Failure,
  type Pong,
  type SpawnActor,
  type StopActor,
} from "../../messages/index.js";
import { formatAddress } from "./address.js";
import type { Cell, Delivery } from "./cell.js";
import type { CellTable } from "./cell-table.js";
import { ActorExistsError, UnknownActorKindError } from "./errors.js";
import type { KindTable } from "./kinds.js";
import { SYS_PATH, type Origin } from "./options.js";
import type { ActorRef, Behavior, Message, SpawnOptions } from "./types.js";

/** What the system service needs from its actor system. */
export interface SystemServiceHost {
  readonly nodeId: string;
  readonly incarnation: string;
  replyTo(delivery: Delivery, msg: Message, fromPath: string): void;
  failAsk(delivery: Origin, code: Failure["code"], message: string): void;
  deadLetter(delivery: Delivery, to: string, reason: string): void;
  spawn<M extends Message, S>(behavior: Behavior<M, S>, opts: SpawnOptions): ActorRef<M>;
  spawnChild<M extends Message, S>(parent: Cell, behavior: Behavior<M, S>, opts: SpawnOptions): ActorRef<M>;
}

/** Refuses a spawn at `path` (a stopped system, a bad name, a live actor there) by throwing its typed error. */
export type SpawnCheck = (path: string, name: string) => void;

/**
 * A node's system service at `$sys`: spawns registered kinds and stops actors for remote nodes, and
 * answers pings. A reply type sent to it (`sys.spawned`, `sys.ack`, ...) answers nothing: it is a
 * dead letter.
 */
export class SystemService {
  constructor(
    private readonly host: SystemServiceHost,
    private readonly cells: CellTable,
    private readonly kinds: Pick<KindTable<unknown>, "prepare" | "names">,
    private readonly checkSpawn: SpawnCheck,
  ) {}

  /** Handles one message addressed to `$sys`. */
  handle(raw: Message, delivery: Delivery): void {
    // Remote system messages were decoded already; a local one is checked here (they are rare).
    const parsed = SystemMessage.safeParse(raw);
    if (!parsed.success) {
      this.host.deadLetter(delivery, formatAddress(this.host.nodeId, SYS_PATH), "bad-input");
      return this.host.failAsk(delivery, "bad-input", `malformed ${raw.type}`);
    }
    const msg = parsed.data;
    switch (msg.type) {
      case "sys.spawn":
        return this.onSpawn(msg, delivery);
      case "sys.stop":
        return this.onStop(msg, delivery);
      case "sys.ping": {
        const pong: Pong = { type: "sys.pong", node: this.host.nodeId, inc: this.host.incarnation };
        return this.host.replyTo(delivery, pong, SYS_PATH);
      }
      case "sys.spawned":
      case "sys.ack":
      case "sys.pong":
      case "sys.failure":
        return this.host.deadLetter(
          delivery,
          formatAddress(this.host.nodeId, SYS_PATH),
          "unexpected-system-message",
        );
    }
  }

  /**
   * Spawns a registered kind for a remote request. Everything that can refuse the spawn (arguments,
   * parent, name, a live actor at the path) is checked before the kind's factory runs: a factory may
   * reserve a slot or start a worker thread, which a refused spawn must not leave behind.
   */
  private onSpawn(req: SpawnActor, delivery: Delivery): void {
    const prepared = this.kinds.prepare(req.kind, req.args);
    if (!prepared)
      return this.host.failAsk(
        delivery,
        "unknown-kind",
        new UnknownActorKindError(req.kind, this.kinds.names()).message,
      );
    if ("code" in prepared) return this.host.failAsk(delivery, prepared.code, prepared.message);
    const slash = req.name.lastIndexOf("/");
    const parent = slash < 0 ? undefined : this.cells.get(req.name.slice(0, slash));
    if (slash >= 0 && (!parent || parent.stopped))
      return this.host.failAsk(delivery, "no-such-actor", `no parent actor for ${req.name}`);
    const opts: SpawnOptions = { name: req.name.slice(slash + 1), supervision: prepared.supervision };
    try {
      this.checkSpawn(parent ? req.name : opts.name, opts.name);
      const behavior = prepared.create();
      const ref = parent ? this.host.spawnChild(parent, behavior, opts) : this.host.spawn(behavior, opts);
      const spawned: ActorSpawned = { type: "sys.spawned", address: ref.address };
      this.host.replyTo(delivery, spawned, SYS_PATH);
    } catch (error) {
      const code = error instanceof ActorExistsError ? "actor-exists" : "spawn-failed";
      this.host.failAsk(delivery, code, error instanceof Error ? error.message : String(error));
    }
  }

  /** Stops a live local actor for a remote request and acknowledges it. */
  private onStop(req: StopActor, delivery: Delivery): void {
    const cell = this.cells.live(req.path);
    if (!cell)
      return this.host.failAsk(
        delivery,
        "no-such-actor",
        `no actor at ${formatAddress(this.host.nodeId, req.path)}`,
      );
    cell.stop();
    this.host.replyTo(delivery, { type: "sys.ack" }, SYS_PATH);
  }
}
