import { Packr } from "msgpackr";
import { z } from "zod";

const float32 = z.custom<Float32Array>((v) => v instanceof Float32Array, "expected a Float32Array");

/**
 * The blob a reducer writes per checkpoint (`jobNames.checkpoint(job, step, r)`): its parameter
 * slice and its optimizer state at `version`. The schema is the source of truth for what a
 * reducer reads back; a blob that does not fit it is refused with {@link CheckpointDecodeError}
 * rather than trusted by a cast.
 */
export const ReducerCheckpoint = z.strictObject({
  version: z.number().int().min(0),
  offset: z.number().int().min(0),
  params: float32,
  optimizer: z.strictObject({
    name: z.enum(["sgd", "adam"]),
    t: z.number().int().min(0),
    buffers: z.array(float32),
  }),
});
export type ReducerCheckpoint = z.infer<typeof ReducerCheckpoint>;

/** A stored checkpoint blob that is not a reducer checkpoint (corrupt, or written by another version). */
export class CheckpointDecodeError extends Error {
  override name = "CheckpointDecodeError";
  constructor(
    readonly blobName: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`checkpoint ${blobName} is not a reducer checkpoint: ${detail}`, options);
  }
}

// moreTypes: typed arrays round-trip as typed arrays, not as plain byte buffers.
const packr = new Packr({ useRecords: false, moreTypes: true });

/** Encodes a checkpoint (synchronously, so the caller may go on mutating the arrays afterwards). */
export function encodeCheckpoint(checkpoint: ReducerCheckpoint): Uint8Array {
  return packr.pack(checkpoint);
}

/** Decodes a stored blob; throws {@link CheckpointDecodeError} when it does not fit the schema. */
export function decodeCheckpoint(blob: Uint8Array, blobName: string): ReducerCheckpoint {
  let raw: unknown;
  try {
    raw = packr.unpack(blob);
  } catch (error) {
    throw new CheckpointDecodeError(blobName, "not msgpack", { cause: error });
  }
  const parsed = ReducerCheckpoint.safeParse(raw);
  if (!parsed.success)
    throw new CheckpointDecodeError(blobName, z.prettifyError(parsed.error), { cause: parsed.error });
  return parsed.data;
}
