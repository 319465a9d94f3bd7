/**
 * The slice of nact the runtime uses, typed once. nact's bundled `.d.ts` does not describe what
 * the runtime relies on (supervision symbols on the context, `onCrash`'s child argument, `afterStop`,
 * the system ref as a parent), so its module is viewed through this interface in one place.
 * @module
 */
import nact from "nact";

/** A nact actor or system, opaque to the runtime. */
export type NactRef = object;

/** What nact hands an actor function and its supervision hooks. */
export interface NactCtx {
  self: NactRef;
  reset: symbol;
  resume: symbol;
  stop: symbol;
  escalate: symbol;
  stopChild: symbol;
}

/** The nact functions the actor system and its cells call. */
export interface NactApi {
  start(opts: { name: string }): NactRef;
  spawn(
    parent: NactRef,
    f: (state: unknown, msg: unknown, ctx: NactCtx) => unknown,
    name: string,
    props: object,
  ): NactRef;
  dispatch(ref: NactRef, msg: unknown): void;
  stop(ref: NactRef): void;
}

// The one cast: nact's declarations type refs generically and hide the context symbols this slice uses.
export const nactApi = nact as unknown as NactApi;
