import { Packr } from "msgpackr";
import { z } from "zod";
import { JobEvent, TrainResult } from "../../messages/index.js";
import { JobSpec } from "../job/spec.js";
import type { PersistedJob } from "./state.js";

const packr = new Packr({ useRecords: false, moreTypes: true });

const int = z.number().int();
const range = z.tuple([int, int]);
/** A number that may be NaN (the loss before the first step). */
const loose = z.union([z.number(), z.nan()]);

/** The schema of a persisted shard ledger. */
export const LedgerStateSchema = z.object({
  size: int,
  epochs: int,
  epoch: int,
  next: int,
  pool: z.array(range),
  leases: z.array(z.object({ id: z.string(), epoch: int, holder: z.string(), ranges: z.array(range) })),
  seq: int,
  counts: z.instanceof(Uint8Array),
  history: z.array(z.object({ epoch: int, committed: int, duplicates: int, missing: int })),
});

const MembershipRecordSchema = z.object({
  kind: z.enum(["join", "death", "leave", "suspect", "recovered", "resize", "failover", "straggler"]),
  node: z.string(),
  step: int,
  t: z.number(),
  at: z.number(),
  detail: z.string().optional(),
  recoverySeconds: z.number().optional(),
});

/** The schema of the job state a coordinator persists (see {@link PersistedJob}). */
export const PersistedJobSchema = z.object({
  job: z.string(),
  spec: JobSpec,
  state: z.enum(["running", "finished", "failed"]),
  term: int,
  step: int,
  epoch: int,
  members: z.array(
    z.object({ node: z.string(), trainer: z.string(), loader: z.string(), inc: z.string().optional() }),
  ),
  reducers: z.object({ addresses: z.array(z.string()), bounds: z.array(int) }),
  reducerGen: int,
  paramCount: int,
  ledger: LedgerStateSchema,
  checkpointStep: int.nullable(),
  // Both absent in records written before checkpoints could be restored.
  checkpoints: z.array(int.min(0)).max(100).optional(),
  stepsLost: int.min(0).optional(),
  startedAt: z.number(),
  backends: z.array(z.string()),
  evals: z.array(z.object({ step: int, epoch: int, t: z.number(), loss: loose, accuracy: loose })),
  membership: z.array(MembershipRecordSchema),
  membershipDropped: z.object({ quiet: int, changes: int }).optional(),
  hashChecks: z.object({ checked: int, consistent: z.boolean(), mismatches: z.array(z.string()) }),
  commitAudit: z.object({ checked: int, mismatches: z.array(z.string()) }),
  lastLoss: loose,
  lastStepEvent: JobEvent.optional(),
  // Absent in older records; one entry per member, and members are at most maxWorkers (≤ 1024).
  balance: z
    .array(z.object({ node: z.string(), rate: z.number().min(0).max(1e9), share: int.min(0) }))
    .max(1024)
    .optional(),
  result: TrainResult.optional(),
  error: z.string().optional(),
  endedAt: z.number().optional(),
});

/** A stored job state that does not decode: the record is corrupt or of another format. */
export class JobStateDecodeError extends Error {
  override name = "JobStateDecodeError";
}

/** Encodes the job state for the KV record (msgpack). */
export function encodeJob(p: PersistedJob): Uint8Array {
  return packr.pack(p);
}

/** Decodes a KV record into the job state; throws {@link JobStateDecodeError} when it does not fit the schema. */
export function decodeJob(bytes: Uint8Array): PersistedJob {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (error) {
    throw new JobStateDecodeError(`job state is not msgpack: ${(error as Error).message}`);
  }
  const parsed = PersistedJobSchema.safeParse(raw);
  if (!parsed.success)
    throw new JobStateDecodeError(
      `job state does not decode: ${parsed.error.issues.slice(0, 3).map(issue).join("; ")}`,
    );
  return parsed.data;
}

function issue(i: { path: PropertyKey[]; message: string }): string {
  return `${i.path.map(String).join(".") || "(root)"}: ${i.message}`;
}
