import { z } from "zod";

/**
 * What a node publishes on `flock.<cluster>.hb.<node>` every heartbeat interval. JSON on the wire (a
 * few hundred bytes; readable with `nats sub 'flock.*.hb.*'`), checked by a strict schema on receipt.
 */
export const Heartbeat = z.strictObject({
  t: z.literal("hb"),
  v: z.literal(1),
  node: z.string().min(1).max(128),
  inc: z.string().min(1).max(64),
  /** Increases with every heartbeat of one incarnation. */
  seq: z.number().int().nonnegative(),
  /** `leaving` while draining, `left` in the final goodbye. */
  state: z.enum(["alive", "leaving", "left"]),
  slots: z.number().int().nonnegative(),
  freeSlots: z.number().int().nonnegative(),
  device: z.string().max(32),
  backend: z.string().max(64).optional(),
  load: z.number(),
  lagMs: z.number(),
  actors: z.record(z.string().max(128), z.number().int().nonnegative()),
  /** Resident set size of the node's process in bytes (optional: older nodes do not send it). */
  rssBytes: z.number().int().nonnegative().optional(),
  /** Inbound messages the node refused so far, all reasons (`flock_bad_input_total`). */
  badInput: z.number().int().nonnegative().optional(),
  /** Messages that reached no actor on the node so far (`flock_dead_letters_total`). */
  deadLetters: z.number().int().nonnegative().optional(),
  /** Sender's wall clock (informational only: no decision depends on another machine's clock). */
  sentAt: z.number(),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

/**
 * Sent by an observer that receives a heartbeat from an incarnation it has declared dead: that
 * incarnation is fenced off for good, and the node must rejoin as a new one.
 */
export const DeadNotice = z.strictObject({
  t: z.literal("dead"),
  v: z.literal(1),
  node: z.string().min(1).max(128),
  inc: z.string().min(1).max(64),
  /** Node id of the observer. */
  by: z.string().min(1).max(128),
});
export type DeadNotice = z.infer<typeof DeadNotice>;

const MembershipFrame = z.discriminatedUnion("t", [Heartbeat, DeadNotice]);
/** A heartbeat or a dead notice. */
export type MembershipFrame = z.infer<typeof MembershipFrame>;

/**
 * Subject of `node`'s heartbeats: the publisher's id is the last token, so a NATS server can allow
 * each node's user to publish its own only, and receivers check the body's `node` against it.
 */
export function heartbeatSubject(cluster: string, node: string): string {
  return `flock.${cluster}.hb.${node}`;
}

/** Subject of the dead notices observer `by` sends (the sender token is `by`, checked against the body). */
export function deadNoticeSubject(cluster: string, by: string): string {
  return `flock.${cluster}.dead.${by}`;
}

/** The patterns membership listens on: every node's heartbeats, every observer's dead notices. */
export function membershipPatterns(cluster: string): { heartbeats: string; deadNotices: string } {
  return { heartbeats: `flock.${cluster}.hb.*`, deadNotices: `flock.${cluster}.dead.*` };
}

/** Whether a frame came from the node its subject names (heartbeats: `node`; dead notices: `by`). */
export function frameFromSender(frame: MembershipFrame, subject: string): boolean {
  const sender = subject.slice(subject.lastIndexOf(".") + 1);
  return (frame.t === "hb" ? frame.node : frame.by) === sender;
}

/** Encodes a heartbeat or a dead notice. */
export function encodeFrame(frame: MembershipFrame): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(frame));
}

/** Decodes and checks a frame; returns an error text instead of throwing. */
export function decodeFrame(bytes: Uint8Array): { frame: MembershipFrame } | { error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    return { error: `undecodable membership frame: ${(err as Error).message}` };
  }
  const parsed = MembershipFrame.safeParse(raw);
  if (!parsed.success) return { error: `bad membership frame: ${z.prettifyError(parsed.error)}` };
  return { frame: parsed.data };
}
