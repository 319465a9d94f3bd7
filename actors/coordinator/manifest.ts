/**
 * The checkpoint manifest: what makes a set of reducer parts one complete checkpoint of a job.
 * The coordinator writes it (`jobNames.checkpointManifest`) after every reducer acknowledged its
 * part, so a manifest's existence means the checkpoint is complete; it names each part with its
 * size and sha256, and holds the job state at that step (ledger, epochs, RNG positions). The
 * schema is the source of truth on read: a manifest that does not fit it is refused with
 * {@link ManifestDecodeError}, never trusted by a cast. Retention ({@link prunable}) is decided here too.
 * @module
 */
import { Packr } from "msgpackr";
import { z } from "zod";
import { jobNames } from "../job/names.js";
import type { LedgerState } from "../ledger/ledger.js";
import { LedgerStateSchema } from "./codec.js";

const packr = new Packr({ useRecords: false, moreTypes: true });
const int = z.number().int();
const nat = int.min(0);
/** A number that may be NaN (the loss before the first step). */
const loose = z.union([z.number(), z.nan()]);
/** A sha256 digest in lower-case hex. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "a sha256 digest in lower-case hex");

/** One reducer's part of a checkpoint: its blob, the slice it covers, its size and digest. */
export const ManifestPart = z.strictObject({
  r: nat.max(63),
  name: z.string().min(1).max(1024),
  offset: nat,
  length: nat,
  bytes: nat,
  sha256: Sha256Hex,
});
export type ManifestPart = z.infer<typeof ManifestPart>;

/**
 * Where the job's random sources stand at the step. Trainers draw no random numbers while they
 * train: the initial parameters come from `seed`, and an epoch's sample order is the seeded
 * permutation of `orderSeed` (= `epochSeed(seed, dataEpoch)`), walked in ledger positions; the
 * ledger's `next` is the position the order has reached.
 */
export const RngPositions = z.strictObject({
  seed: nat,
  dataEpoch: nat,
  orderSeed: nat,
  nextPosition: nat,
});
export type RngPositions = z.infer<typeof RngPositions>;

/** The job state a checkpoint holds besides the parameters (snapshotted right after its commit). */
export const ManifestState = z.strictObject({
  /** The membership epoch at the step. */
  epoch: nat,
  reducerGen: nat,
  /** The shard ledger AT the step: a restore rolls the ledger back to it. */
  ledger: LedgerStateSchema,
  rng: RngPositions,
  lastLoss: loose,
  evals: z
    .array(z.strictObject({ step: nat, epoch: nat, t: z.number(), loss: loose, accuracy: loose }))
    .max(100_000),
});
/** The job state of a checkpoint (its ledger typed as the ledger's own, shared or not). */
export type ManifestState = Omit<z.infer<typeof ManifestState>, "ledger"> & { ledger: LedgerState };

/** A complete checkpoint of `job` at `step` (see the module comment). */
export const CheckpointManifest = z
  .strictObject({
    format: z.literal(1),
    job: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
    step: int.min(0),
    /** The coordinator term that wrote it. */
    term: nat,
    writtenAt: z.number(),
    paramCount: int.min(1),
    parts: z.array(ManifestPart).min(1).max(64),
    state: ManifestState,
  })
  .superRefine((m, ctx) => {
    const problem = partsProblem(m);
    if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["parts"] });
  });
export type CheckpointManifest = Omit<z.infer<typeof CheckpointManifest>, "state"> & { state: ManifestState };

/** Parts must be reducers 0..R-1 in order, tile [0, paramCount) and be named as this job's parts of this step. */
function partsProblem(m: {
  job: string;
  step: number;
  paramCount: number;
  parts: ManifestPart[];
}): string | undefined {
  let next = 0;
  for (const [i, part] of m.parts.entries()) {
    if (part.r !== i) return `part ${i} is reducer ${part.r}`;
    if (part.offset !== next) return `part ${i} starts at ${part.offset}, expected ${next}`;
    if (part.name !== jobNames.checkpoint(m.job, m.step, i)) return `part ${i} is named ${part.name}`;
    next = part.offset + part.length;
  }
  return next === m.paramCount ? undefined : `parts cover ${next} of ${m.paramCount} parameters`;
}

/** A stored manifest that does not decode (corrupt, truncated, or of another format). */
export class ManifestDecodeError extends Error {
  override name = "ManifestDecodeError";
  constructor(
    readonly blobName: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`checkpoint manifest ${blobName} is refused: ${detail}`, options);
  }
}

/** Encodes a manifest for the object store (msgpack: the ledger's counts stay bytes). */
export function encodeManifest(manifest: CheckpointManifest): Uint8Array {
  return packr.pack(manifest);
}

/** Decodes a stored manifest; throws {@link ManifestDecodeError} when it does not fit the schema. */
export function decodeManifest(blob: Uint8Array, blobName: string): CheckpointManifest {
  let raw: unknown;
  try {
    raw = packr.unpack(blob);
  } catch (error) {
    throw new ManifestDecodeError(blobName, "not msgpack", { cause: error });
  }
  const parsed = CheckpointManifest.safeParse(raw);
  if (!parsed.success)
    throw new ManifestDecodeError(blobName, z.prettifyError(parsed.error), { cause: parsed.error });
  return parsed.data;
}

/** The step and kind of one of `job`'s checkpoint blobs, or undefined for any other name. */
export function parseCheckpointName(
  job: string,
  name: string,
): { step: number; part: number | "manifest" } | undefined {
  const prefix = jobNames.checkpointPrefix(job);
  if (!name.startsWith(prefix)) return undefined;
  const m = /^(\d{1,15})\.(?:r(\d{1,2})|(manifest))$/.exec(name.slice(prefix.length));
  if (!m?.[1]) return undefined;
  return { step: Number(m[1]), part: m[3] ? "manifest" : Number(m[2]) };
}

/** Steps of the manifests among `names` (`job`'s), newest first. */
export function manifestSteps(job: string, names: readonly string[]): number[] {
  return names
    .flatMap((n) => {
      const c = parseCheckpointName(job, n);
      return c?.part === "manifest" ? [c.step] : [];
    })
    .sort((a, b) => b - a);
}

/**
 * Retention: which of `job`'s blobs to delete, given the complete checkpoints to keep (`keep`,
 * the last K). Everything of a step older than the newest kept one and not kept itself goes —
 * complete checkpoints beyond the last K, and parts of incomplete ones (a reducer that never
 * acknowledged). Blobs of steps after the newest complete one may be a checkpoint being written:
 * they stay. Names that are not this job's checkpoint blobs are never touched.
 */
export function prunable(job: string, names: readonly string[], keep: readonly number[]): string[] {
  if (keep.length === 0) return [];
  const newest = Math.max(...keep);
  return names.filter((n) => {
    const c = parseCheckpointName(job, n);
    return c !== undefined && c.step < newest && !keep.includes(c.step);
  });
}

/** The retained list after a checkpoint of `step` completed: ascending, the last `k` only. */
export function retain(kept: readonly number[], step: number, k: number): number[] {
  return [...new Set([...kept, step])].sort((a, b) => a - b).slice(-k);
}
