/**
 * A member speaks only for itself: the fields of a message that name a member or a reducer must
 * name its sender. The subject binds a wire envelope's sender node to its NATS user (see
 * `runtime/actor/subjects.ts`); these checks bind the message's own fields to that sender, so node
 * b cannot report node a's gradient, step result or loader lease, nor acknowledge for reducer r
 * unless it is reducer r. Pure.
 * @module
 */
import { addressNode } from "./term-guard.js";

/**
 * The node a delivery came from: its sender's node, or — a local tell that names no sender — the
 * receiver's own node (every wire envelope names its sender; only in-process code can omit it).
 */
export function senderNode(from: string | undefined, localNode: string): string | undefined {
  return from === undefined ? localNode : addressNode(from);
}

/** Why a message naming member `member` may not come from `from` (received on `localNode`), or undefined. */
export function memberMismatch(
  member: string,
  from: string | undefined,
  localNode: string,
): string | undefined {
  return senderNode(from, localNode) === member ? undefined : "not-its-member";
}

/**
 * Why an acknowledgement for reducer `r` (address `reducers[r]`) may not come from `from`, received
 * on `localNode`: it must come from that reducer's node (identity is per node, as NATS enforces
 * it), or undefined when it may. An `r` the job has no reducer for is refused too.
 */
export function reducerMismatch(
  r: number,
  from: string | undefined,
  reducers: readonly string[],
  localNode: string,
): string | undefined {
  const address = reducers[r];
  if (address === undefined) return "unknown-reducer";
  return senderNode(from, localNode) === addressNode(address) ? undefined : "not-its-reducer";
}

/**
 * Why a published parameter slice of reducer `r` may not come from `from` (a topic delivery's
 * `<node>/$topic`): it must come from the node that reducer lives on (`reducerNodes[r]`, from the
 * coordinator's last prepare or step), or undefined when it may.
 */
export function sliceMismatch(
  r: number,
  from: string | undefined,
  reducerNodes: readonly (string | undefined)[],
): string | undefined {
  const node = addressNode(from);
  return node !== undefined && node === reducerNodes[r] ? undefined : "not-its-reducer";
}
