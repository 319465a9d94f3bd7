import { z } from "zod";

/** A small benchmark message: the payload of the tell and ask measurements. */
export const BenchPing = z.strictObject({ type: z.literal("bench.ping"), seq: z.number().int() });
/** The echo actor's answer to {@link BenchPing}. */
export const BenchPong = z.strictObject({ type: z.literal("bench.pong"), seq: z.number().int() });
/** Messages the benchmark's actors accept. */
export const BenchMessage = z.discriminatedUnion("type", [BenchPing, BenchPong]);
export type BenchMessage = z.infer<typeof BenchMessage>;

/** The benchmark peer's node id and actor paths. */
export const PEER_NODE = "bench-peer";
/** The sink actor counts pings; the echo actor answers them. */
export const PEER_SINK = `${PEER_NODE}/sink`;
export const PEER_ECHO = `${PEER_NODE}/echo`;

/** The sink acknowledges every ACK_EVERY messages (with its running count), for the sender's window. */
export const ACK_EVERY = 500;

/** Raw NATS subjects of the benchmark (outside the flock namespace, so no gateway sees them). */
export const benchSubjects = (run: string) => ({
  rawData: `bench.${run}.raw.data`,
  rawEcho: `bench.${run}.raw.echo`,
  rawAck: `bench.${run}.raw.ack`,
  flockAck: `bench.${run}.flock.ack`,
});

/** Encodes a running count (acks). */
export function encodeCount(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, n);
  return b;
}

/** Decodes a running count. */
export function decodeCount(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getFloat64(0);
}
