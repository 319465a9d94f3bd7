import { z } from "zod";

/** A message type: a strict zod object whose `type` field is a string literal. */
export type MessageSchema = z.ZodType<{ type: string }>;

/**
 * Maps message type tags to their schemas: the one place the wire learns what a type may carry.
 * Every actor protocol registers its schemas here before a node accepts remote messages.
 */
export class MessageRegistry {
  /** Per tag: the schema registered (a union or a strict object), which parses that tag's bodies. */
  private readonly schemas = new Map<string, MessageSchema>();
  /** Per tag: the union member declaring it, so that registering one member twice is no conflict. */
  private readonly members = new Map<string, z.core.$ZodType>();

  /** Registers each member of a discriminated union (or a single strict object) by its `type` literal. */
  register(...schemas: MessageSchema[]): this {
    for (const schema of schemas) {
      for (const [tag, member] of membersByTag(schema)) {
        const existing = this.members.get(tag);
        if (existing && existing !== member) throw new Error(`message type ${tag} is registered twice`);
        this.members.set(tag, member);
        // A union parses a body by its discriminator (one map look-up, then the member's checks),
        // so the registered schema itself decodes, typed as a message, without a cast.
        if (!existing) this.schemas.set(tag, schema);
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

/** The members of a (possibly nested) union of strict objects, by their `type` literal. */
function membersByTag(schema: z.core.$ZodType): Array<[string, z.core.$ZodType]> {
  if (schema instanceof z.ZodUnion) return schema.options.flatMap((o) => membersByTag(o));
  if (schema instanceof z.ZodObject) {
    const tag: unknown = schema.shape.type;
    if (tag instanceof z.ZodLiteral && tag.values.size === 1) {
      const [value] = tag.values;
      if (typeof value === "string") return [[value, schema]];
    }
  }
  throw new Error("a message schema must be a z.strictObject with a literal `type`, or a union of them");
}
