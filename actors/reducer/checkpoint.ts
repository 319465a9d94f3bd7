import { createHash } from "node:crypto";
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

/** A stored part whose size or digest is not what its manifest says (corrupt, or overwritten since). */
export class CheckpointIntegrityError extends Error {
  override name = "CheckpointIntegrityError";
  constructor(
    readonly blobName: string,
    detail: string,
  ) {
    super(`checkpoint part ${blobName} is refused: ${detail}`);
  }
}

/** The lower-case hex sha256 of a blob (what manifests name their parts by). */
export function sha256Hex(blob: Uint8Array): string {
  return createHash("sha256").update(blob).digest("hex");
}

/** What a manifest says of one part, and the slice the reading reducer owns. */
export interface ExpectedPart {
  bytes: number;
  sha256: string;
  step: number;
  offset: number;
  length: number;
}

/**
 * Checks a part against its manifest entry (size, digest), decodes it, and checks it is the
 * slice asked for at the step asked for. Throws {@link CheckpointIntegrityError} or
 * {@link CheckpointDecodeError}; a part that passes is bit-identical to the one written.
 */
export function readPart(blob: Uint8Array, blobName: string, expect: ExpectedPart): ReducerCheckpoint {
  if (blob.length !== expect.bytes)
    throw new CheckpointIntegrityError(blobName, `${blob.length} bytes, the manifest says ${expect.bytes}`);
  const digest = sha256Hex(blob);
  if (digest !== expect.sha256)
    throw new CheckpointIntegrityError(blobName, `sha256 ${digest}, the manifest says ${expect.sha256}`);
  const part = decodeCheckpoint(blob, blobName);
  if (part.version !== expect.step || part.offset !== expect.offset || part.params.length !== expect.length)
    throw new CheckpointIntegrityError(
      blobName,
      `holds version ${part.version} at ${part.offset} (+${part.params.length}), expected ${expect.step} at ${expect.offset} (+${expect.length})`,
    );
  return part;
}
