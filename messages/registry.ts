import { z } from "zod";

/** A message type: a strict zod object whose `type` field is a string literal. */
export type MessageSchema = z.ZodType<{ type: string }>;

/**
 * Maps message type tags to their schemas: the one place the wire learns what a type may carry.
 * Every actor protocol registers its schemas here before a node accepts remote messages.
 */
export class MessageRegistry {
  private readonly schemas = new Map<string, MessageSchema>();

  /** Registers each member of a discriminated union (or a single strict object) by its `type` literal. */
  register(...schemas: MessageSchema[]): this {
    for (const schema of schemas) {
      for (const [tag, member] of membersByTag(schema)) {
        const existing = this.schemas.get(tag);
        if (existing && existing !== member) throw new Error(`message type ${tag} is registered twice`);
        this.schemas.set(tag, member);
      }
    }
    return this;
  }

  /** The schema for a tag, or undefined when no protocol declared it. */
  get(type: string): MessageSchema | undefined {
    return this.schemas.get(type);
  }

  /** Every registered tag, sorted. */
  types(): string[] {
    return [...this.schemas.keys()].sort();
  }
}

function membersByTag(schema: MessageSchema): Array<[string, MessageSchema]> {
  const def = (
    schema as unknown as {
      def: { type: string; options?: MessageSchema[]; shape?: Record<string, z.ZodType> };
    }
  ).def;
  if (def.type === "union" && def.options) return def.options.flatMap((o) => membersByTag(o));
  if (def.type === "object" && def.shape) {
    const tag = def.shape.type as unknown as { def?: { type: string; values?: unknown[] } };
    const values = tag?.def?.type === "literal" ? tag.def.values : undefined;
    if (values && values.length === 1 && typeof values[0] === "string") return [[values[0], schema]];
  }
  throw new Error("a message schema must be a z.strictObject with a literal `type`, or a union of them");
}
