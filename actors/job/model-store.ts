import { Packr } from "msgpackr";
import { z } from "zod";
import { sha256Hex } from "../reducer/checkpoint.js";
import { jobNames } from "./names.js";
import type { SavedWeight } from "../compute/fine-tune.js";

const float32 = z.custom<Float32Array>((v) => v instanceof Float32Array, "expected a Float32Array");

/**
 * The latest scored model of a job, as its evaluator keeps it in the object store (name:
 * {@link modelBlobName}): the flat parameters of `step` exactly as the evaluator scored them, so a
 * model exported from it reproduces the reported accuracy. Written before each evaluation is
 * reported, so the final one is stored before the coordinator announces the job's end.
 */
export const StoredModel = z.strictObject({
  v: z.literal(1),
  job: z.string(),
  step: z.number().int().min(0),
  loss: z.number(),
  accuracy: z.number(),
  params: float32,
  /**
   * The weights `params` holds, in flat order (tfjs names, `layer/kernel`): what fine-tuning from
   * `job://ID` matches layers by. Optional: blobs written before it was kept have none.
   */
  weights: z
    .array(z.strictObject({ name: z.string().max(512), shape: z.array(z.number().int().min(0)).max(8) }))
    .max(4096)
    .optional(),
  /** sha256 (hex) of the parameters' bytes: a blob that does not check out is refused. */
  sha256: z.string(),
});
/** The latest scored model of a job. */
export type StoredModel = z.infer<typeof StoredModel>;

/** The object-store name of a job's latest model: under the job's checkpoint prefix, so retention deletes it with them. */
export function modelBlobName(job: string): string {
  return `${jobNames.checkpointPrefix(job)}model`;
}

/** A stored model blob that is missing, undecodable or whose digest does not match. */
export class StoredModelError extends Error {
  override name = "StoredModelError";
}

const packr = new Packr({ useRecords: false, moreTypes: true });

/** Encodes a model blob (synchronously: the caller may transfer `params` afterwards). */
export function encodeStoredModel(m: Omit<StoredModel, "v" | "sha256">): Uint8Array {
  const sha256 = sha256Hex(new Uint8Array(m.params.buffer, m.params.byteOffset, m.params.byteLength));
  return packr.pack({ v: 1, ...m, sha256 });
}

/** Decodes a model blob; throws {@link StoredModelError} when it does not fit or check out. */
export function decodeStoredModel(blob: Uint8Array, name: string): StoredModel {
  let raw: unknown;
  try {
    raw = packr.unpack(blob);
  } catch (error) {
    throw new StoredModelError(`${name} is not msgpack`, { cause: error });
  }
  const parsed = StoredModel.safeParse(raw);
  if (!parsed.success)
    throw new StoredModelError(`${name} is not a stored model: ${z.prettifyError(parsed.error)}`);
  const p = parsed.data.params;
  if (sha256Hex(new Uint8Array(p.buffer, p.byteOffset, p.byteLength)) !== parsed.data.sha256)
    throw new StoredModelError(`${name}: the parameters' sha256 differs from the one stored`);
  return parsed.data;
}

/**
 * A stored model's parameters cut into its named weights (copies), for fine-tuning from it;
 * throws {@link StoredModelError} when the blob lists no weights or they do not add up.
 */
export function storedWeights(stored: StoredModel): SavedWeight[] {
  const name = modelBlobName(stored.job);
  if (!stored.weights) throw new StoredModelError(`${name} lists no weights (written by an older flock)`);
  const out: SavedWeight[] = [];
  let at = 0;
  for (const w of stored.weights) {
    const size = w.shape.reduce((a, b) => a * b, 1);
    if (at + size > stored.params.length) break;
    out.push({ name: w.name, shape: w.shape, values: stored.params.slice(at, at + size) });
    at += size;
  }
  if (at !== stored.params.length || out.length !== stored.weights.length)
    throw new StoredModelError(
      `${name}: its weights do not add up to its ${stored.params.length} parameters`,
    );
  return out;
}
