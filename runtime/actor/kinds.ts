import type { z } from "zod";
import type { SupervisionPolicy } from "./supervision.js";
import type { Behavior, Message } from "./types.js";

/**
 * An actor kind a remote node may ask a node to spawn: a name, an argument schema, a factory.
 * No code travels. `create` sees arguments already checked by `args`, typed as that schema's output.
 */
export interface ActorKind<A, M extends Message = Message, S = unknown, Sys = unknown> {
  args: z.ZodType<A>;
  create(args: A, system: Sys): Behavior<M, S>;
  supervision?: Partial<SupervisionPolicy>;
}

/** A spawn request whose arguments passed their kind's schema: nothing is created until `create` runs. */
export interface PreparedSpawn {
  create(): Behavior<Message, unknown>;
  supervision?: Partial<SupervisionPolicy>;
}

/** Why a spawn request cannot be prepared. */
export type SpawnRefusal = { code: "unknown-kind" | "bad-input"; message: string };

/** The kinds one node hosts, each erased behind a closure that keeps its argument type. */
export class KindTable<Sys> {
  private readonly kinds = new Map<string, (raw: unknown) => PreparedSpawn | SpawnRefusal>();

  constructor(private readonly system: Sys) {}

  /** Registers (or replaces) a kind. */
  register<A, M extends Message, S>(kind: string, def: ActorKind<A, M, S, Sys>): void {
    this.kinds.set(kind, (raw) => {
      const args = def.args.safeParse(raw);
      if (!args.success)
        return { code: "bad-input", message: `bad args for kind ${kind}: ${args.error.message}` };
      return { create: () => def.create(args.data, this.system), supervision: def.supervision };
    });
  }

  /** Checks a request's arguments against its kind's schema; creates nothing. */
  prepare(kind: string, raw: unknown): PreparedSpawn | SpawnRefusal | undefined {
    return this.kinds.get(kind)?.(raw);
  }

  /** Names of the registered kinds. */
  names(): string[] {
    return [...this.kinds.keys()];
  }
}
