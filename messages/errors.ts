/**
 * Errors raised at the message boundary. Each failure mode is its own class so callers test with
 * `instanceof`, never by matching text.
 */

/** Why an inbound message was refused; the label of the bad-input counter. */
export type BadInputReason =
  | "undecodable"
  | "bad-envelope"
  | "unknown-type"
  | "schema"
  | "oversized"
  | "chunk-expired"
  | "chunk-overflow"
  | "chunk-malformed"
  | "stale-incarnation"
  | "stale-epoch"
  | "wrong-cluster"
  | "sender-mismatch"
  /** A bug on the receiving side: delivery threw; caught at the wire so the reader never stops. */
  | "internal-error";

/** Bytes or a body that could not be turned into a typed message. */
export class MessageDecodeError extends Error {
  override name = "MessageDecodeError";
  constructor(
    readonly reason: BadInputReason,
    message: string,
    readonly subject?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A message too large to send, even in chunks. */
export class MessageTooLargeError extends Error {
  override name = "MessageTooLargeError";
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`message of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}
