import { z } from "zod";
import { MessageDecodeError } from "./errors.js";
import type { MessageRegistry } from "./registry.js";

/** Wire format version; a receiver refuses envelopes of another version. */
export const ENVELOPE_VERSION = 1;

/** An address as a sender may write it: `node/path`, the node a literal subject token (no wildcards). */
const ADDRESS = /^[A-Za-z0-9_$.:-]{1,128}\/[^\s*>]+$/;

/**
 * The envelope around every message on the wire.
 * `from`/`to` are addresses (`nodeId/path`), never object references; `corr` links a reply to the
 * `id` of the ask it answers; `deadline` (epoch ms) lets a receiver drop work nobody waits for;
 * `inc` is the sending node's incarnation, so messages from a node's earlier life can be fenced off.
 */
export const Envelope = z.strictObject({
  v: z.literal(ENVELOPE_VERSION),
  type: z.string().min(1).max(128),
  from: z.string().min(1).max(512).regex(ADDRESS),
  to: z.string().min(1).max(512),
  id: z.string().min(1).max(64),
  corr: z.string().min(1).max(64).optional(),
  deadline: z.number().optional(),
  inc: z.string().max(64).optional(),
  body: z.unknown(),
});
/** The envelope around every message on the wire. */
export type Envelope = z.infer<typeof Envelope>;

const KEYS = new Set(["v", "type", "from", "to", "id", "corr", "deadline", "inc", "body"]);

/**
 * A short, safe description of a hostile value for an error message. Never coerces: a map with a
 * `toString` key that is not a function makes `String(value)` throw, which once stopped a node's
 * reader (the throw escaped into the NATS client's parser).
 */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "number":
    case "boolean":
    case "bigint":
      return `${typeof value} ${value.toString().slice(0, 40)}`;
    case "string":
      return `string ${JSON.stringify(value.slice(0, 40))}`;
    case "object":
      return Array.isArray(value) ? "an array" : "a map";
    default:
      return typeof value;
  }
}

/**
 * Checks a decoded value is an envelope. Hand-written rather than `Envelope.parse` because it runs
 * for every message on the hot path; it enforces what the schema above declares, and that `from`
 * and `to` are addresses (`node/path`) a reply can be sent to. It never throws anything but
 * {@link MessageDecodeError}: every field is type-checked before it is used, nothing is coerced.
 */
export function checkEnvelope(value: unknown, subject?: string): Envelope {
  const fail = (why: string): never => {
    throw new MessageDecodeError("bad-envelope", `bad envelope: ${why}`, subject);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) return fail("not a map");
  if (Object.getPrototypeOf(value) !== Object.prototype) return fail("not a plain map");
  const e = value as Record<string, unknown>;
  for (const key of Object.keys(e))
    if (!KEYS.has(key)) fail(`unknown field ${JSON.stringify(key.slice(0, 40))}`);
  if (e.v !== ENVELOPE_VERSION) fail(`version ${describeValue(e.v)} (expected ${ENVELOPE_VERSION})`);
  for (const key of ["type", "from", "to", "id"] as const) {
    const s = e[key];
    const max = key === "type" ? 128 : key === "id" ? 64 : 512;
    if (typeof s !== "string" || s.length === 0 || s.length > max)
      fail(`field "${key}" must be a string of 1..${max} characters, not ${describeValue(s)}`);
  }
  // `from` is where replies and failures go; `to` is checked by the receiver (topics use `*/$topic/...`).
  if (!ADDRESS.test(e.from as string)) fail(`field "from" is not an address (node/path)`);
  if (e.corr !== undefined && (typeof e.corr !== "string" || e.corr.length === 0 || e.corr.length > 64))
    fail(`field "corr" must be a string of 1..64 characters`);
  if (e.deadline !== undefined && (typeof e.deadline !== "number" || Number.isNaN(e.deadline)))
    fail(`field "deadline" must be a number`);
  if (e.inc !== undefined && (typeof e.inc !== "string" || e.inc.length > 64))
    fail(`field "inc" must be a string of at most 64 characters`);
  if (!Object.hasOwn(e, "body")) fail(`missing field "body"`);
  return e as Envelope;
}

/**
 * Validates an envelope's body against the registered schema for its type: the one place bodies are
 * checked. The result is a message of one of the registered protocols; narrow it by its `type`.
 */
export function decodeBody(env: Envelope, registry: MessageRegistry, subject?: string): { type: string } {
  return checkBody(env.type, env.body, registry, subject);
}

/** Checks one message body against the schema registered for `type` (a local send checked like a remote one). */
export function checkBody(
  type: string,
  body: unknown,
  registry: MessageRegistry,
  subject?: string,
): { type: string } {
  const schema = registry.get(type);
  if (!schema)
    throw new MessageDecodeError("unknown-type", `unknown message type "${type.slice(0, 128)}"`, subject);
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new MessageDecodeError(
      "schema",
      `message "${type}" fails its schema: ${z.prettifyError(parsed.error)}`,
      subject,
      {
        cause: parsed.error,
      },
    );
  }
  // The registered schema may be a whole union: a body of another member than its envelope names is refused.
  if (parsed.data.type !== type)
    throw new MessageDecodeError(
      "schema",
      `message "${type}" carries a body of type "${parsed.data.type}"`,
      subject,
    );
  return parsed.data;
}
