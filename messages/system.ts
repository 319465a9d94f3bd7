import { z } from "zod";

/** Asks a node to spawn an actor of a registered kind; args are checked against the kind's own schema. */
export const SpawnActor = z.strictObject({
  type: z.literal("sys.spawn"),
  kind: z.string().min(1).max(128),
  name: z.string().min(1).max(256),
  args: z.unknown(),
});
/** The address of a spawned actor. */
export const ActorSpawned = z.strictObject({ type: z.literal("sys.spawned"), address: z.string() });
/** Asks a node to stop one of its actors. */
export const StopActor = z.strictObject({ type: z.literal("sys.stop"), path: z.string().min(1).max(512) });
/** Acknowledges a request that carries no other answer. */
export const Ack = z.strictObject({ type: z.literal("sys.ack") });
/** Liveness probe for a node's system actor. */
export const Ping = z.strictObject({ type: z.literal("sys.ping") });
/** Reply to {@link Ping}. */
export const Pong = z.strictObject({ type: z.literal("sys.pong"), node: z.string(), inc: z.string() });
/**
 * A failure reported in place of a reply, so a remote ask rejects at once with a typed error
 * instead of waiting for its timeout.
 */
export const Failure = z.strictObject({
  type: z.literal("sys.failure"),
  code: z.enum([
    "no-such-actor",
    "actor-failed",
    "unknown-kind",
    "spawn-failed",
    "bad-input",
    "stopped",
    "actor-exists",
  ]),
  message: z.string().max(4096),
});

/** Every runtime-level message. */
export const SystemMessage = z.discriminatedUnion("type", [
  SpawnActor,
  ActorSpawned,
  StopActor,
  Ack,
  Ping,
  Pong,
  Failure,
]);
/** Every runtime-level message. */
export type SystemMessage = z.infer<typeof SystemMessage>;
/** Schemas to register with a node's message registry. */
export const SYSTEM_MESSAGES = [SystemMessage];

/** Asks a node to spawn an actor of a registered kind. */
export type SpawnActor = z.infer<typeof SpawnActor>;
/** The address of a spawned actor. */
export type ActorSpawned = z.infer<typeof ActorSpawned>;
/** Asks a node to stop one of its actors. */
export type StopActor = z.infer<typeof StopActor>;
/** Acknowledges a request that carries no other answer. */
export type Ack = z.infer<typeof Ack>;
/** Liveness probe for a node's system actor. */
export type Ping = z.infer<typeof Ping>;
/** Reply to {@link Ping}. */
export type Pong = z.infer<typeof Pong>;
/** A failure reported in place of a reply. */
export type Failure = z.infer<typeof Failure>;
