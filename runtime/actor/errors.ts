/** Errors of the actor runtime; callers test with `instanceof`. */

/** An ask got no reply within its timeout. */
export class AskTimeoutError extends Error {
  override name = "AskTimeoutError";
  constructor(
    readonly address: string,
    readonly type: string,
    readonly timeoutMs: number,
  ) {
    super(`ask ${type} to ${address} got no reply within ${timeoutMs} ms`);
  }
}

/** No actor lives at the address (never spawned, or stopped). */
export class ActorNotFoundError extends Error {
  override name = "ActorNotFoundError";
  constructor(
    readonly address: string,
    detail?: string,
  ) {
    super(detail ?? `no actor at ${address}`);
  }
}

/** The actor failed while handling the ask, or a remote node refused it. */
export class RemoteActorError extends Error {
  override name = "RemoteActorError";
  constructor(
    readonly address: string,
    readonly code: string,
    message: string,
  ) {
    super(`${address}: ${code}: ${message}`);
  }
}

/** A spawn named an address where a live actor already is (locally, or on the remote node asked). */
export class ActorExistsError extends Error {
  override name = "ActorExistsError";
  constructor(
    readonly address: string,
    detail?: string,
  ) {
    super(detail ?? `an actor already lives at ${address}`);
  }
}

/** The actor system was stopped while a call was in flight or after it. */
export class ActorSystemStoppedError extends Error {
  override name = "ActorSystemStoppedError";
  constructor(nodeId: string) {
    super(`actor system of node ${nodeId} is stopped`);
  }
}

/** A remote spawn named an actor kind the target node does not know. */
export class UnknownActorKindError extends Error {
  override name = "UnknownActorKindError";
  constructor(
    readonly kind: string,
    known: string[],
  ) {
    super(`unknown actor kind "${kind}"; known: ${known.join(", ") || "(none)"}`);
  }
}

/** A spawn named an actor with characters an address segment cannot hold. */
export class InvalidActorNameError extends Error {
  override name = "InvalidActorNameError";
  constructor(readonly actorName: string) {
    super(`invalid actor name "${actorName}": use letters, digits, _ $ . : -`);
  }
}

/** An address that is not `nodeId/path`. */
export class InvalidAddressError extends Error {
  override name = "InvalidAddressError";
  constructor(readonly address: string) {
    super(`invalid actor address "${address}": expected nodeId/path`);
  }
}
