/**
 * The profile of a streamed dataset (`stream: true`): what featurizing a record needs from the
 * whole training split (classes, feature statistics), computed once by the submitter in a pass
 * that holds one shard at a time (`dataset-stream-profile.ts`) and carried in the job spec, so a
 * trainer never reads shards it is not handed. Schema only (no imports of the dataset modules:
 * `dataset-spec.ts` embeds it).
 * @module
 */
import { z } from "zod";

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Longest class name a profile carries (it travels in every message holding the spec). */
export const PROFILE_CLASS_CHARS = 256;

/**
 * A streamed dataset's profile. `sha256`/`testSha256` are the manifest digests of the stored
 * datasets it was computed from: a node whose manifest differs (the dataset was removed and put
 * again since) refuses to train on it. `splitSeed` chooses the test shards of a `{ fraction }`
 * split (the job seed's `splitSeed`), so every node, the evaluator included, picks the same.
 */
export const StreamProfile = z.strictObject({
  v: z.literal(1),
  sha256: Hex64,
  testSha256: Hex64.optional(),
  splitSeed: z.number().int().min(0).max(0xffffffff),
  classes: z.array(z.union([z.string().max(PROFILE_CLASS_CHARS), z.number().int()])).max(1000),
  features: z
    .array(z.strictObject({ name: z.string().min(1).max(256), mean: z.number(), std: z.number().positive() }))
    .max(2048),
  trainRecords: Count,
  testRecords: Count,
});
/** A streamed dataset's profile (see {@link StreamProfile}). */
export type StreamProfile = z.infer<typeof StreamProfile>;
