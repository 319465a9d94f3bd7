import { z } from "zod";

/**
 * What a node publishes on `flock.<cluster>.hb` every heartbeat interval. JSON on the wire (a few
 * hundred bytes; readable with `nats sub 'flock.*.hb'`), checked by a strict schema on receipt.
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
type MembershipFrame = z.infer<typeof MembershipFrame>;

/** Subject of heartbeats. */
export function heartbeatSubject(cluster: string): string {
  return `flock.${cluster}.hb`;
}

/** Subject of dead notices. */
export function deadNoticeSubject(cluster: string): string {
  return `flock.${cluster}.hb.dead`;
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
