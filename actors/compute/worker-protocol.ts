import type { EngineOptions } from "./engine.js";
import * as errors from "./errors.js";
import type { OptimizerSpec } from "./optimizer.js";

/** A request from a `ComputeWorker` to its thread; `id` pairs it with its reply. */
export type WorkerRequest = { id: number } & (
  | { op: "init"; options: EngineOptions }
  | { op: "initParams"; seed?: number }
  | { op: "setParams"; params: Float32Array }
  | { op: "getParams" }
  | { op: "gradients"; indices: readonly number[]; step: number }
  | { op: "localSteps"; indices: readonly number[]; steps: number; optimizer: OptimizerSpec; round: number }
  | { op: "evaluate"; indices?: readonly number[] }
);

/** An error as it crosses the thread boundary: name, message, stack and own data fields. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  props: Record<string, unknown>;
  cause?: SerializedError;
}

/** The thread's answer to one request. */
export type WorkerReply = { id: number } & (
  { ok: true; value: unknown } | { ok: false; error: SerializedError }
);

/** Error classes of this layer, revived with their prototype so `instanceof` works across threads. */
const KNOWN: Record<string, { prototype: Error }> = Object.fromEntries(
  Object.values(errors)
    .filter((cls): cls is typeof cls & { prototype: Error } => cls.prototype instanceof Error)
    .map((cls) => [cls.name, cls]),
);

/** Flattens an error for postMessage (own fields that clone are kept; the cause chain, 3 deep). */
export function serializeError(err: unknown, depth = 0): SerializedError {
  if (!(err instanceof Error)) return { name: "Error", message: String(err), props: {} };
  const props: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(err)) {
    if (key === "name" || key === "cause") continue;
    try {
      props[key] = structuredClone(value);
    } catch {
      props[key] = String(value);
    }
  }
  const cause = err.cause !== undefined && depth < 3 ? serializeError(err.cause, depth + 1) : undefined;
  return { name: err.name, message: err.message, stack: err.stack, props, cause };
}

/**
 * Rebuilds an error from the worker. Errors of this layer come back as instances of their own
 * class (without re-running the constructor: the fields travel as data); others as plain Errors
 * with the original name.
 */
export function reviveError(data: SerializedError): Error {
  const cause = data.cause === undefined ? undefined : reviveError(data.cause);
  const err = new Error(data.message, cause === undefined ? undefined : { cause });
  const known = Object.hasOwn(KNOWN, data.name) ? KNOWN[data.name] : undefined;
  if (known !== undefined) Object.setPrototypeOf(err, known.prototype);
  Object.assign(err, data.props, { name: data.name });
  if (data.stack !== undefined) err.stack = data.stack;
  return err;
}
