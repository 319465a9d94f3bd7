import { z } from "zod";
import type { KvStore, StoreProvider } from "../store/index.js";

/** Bucket of job lines that `flock status` shows. */
export const JOBS_BUCKET = "jobs";

/**
 * One job's line in the jobs bucket. Key: the job id (a valid KV key: letters, digits, `_ - = . /`;
 * job ids matching `^[A-Za-z0-9_-]+$` are always fine). Value: this object as UTF-8 JSON. The job's
 * coordinator `put`s it whenever the job's state, step, epoch or members change.
 */
export const JobRecord = z.object({
  id: z.string(),
  /** e.g. `pending | running | resizing | done | failed`; shown as is. */
  state: z.string(),
  step: z.number(),
  /** The job's membership epoch. */
  epoch: z.number(),
  /** Node ids (or actor addresses) taking part in the job. */
  members: z.array(z.string()),
  /** Wall-clock ms of the write. */
  updatedAt: z.number(),
  /** Live nodes not given a trainer because they lack the job's data, with why (absent: none). */
  unplaced: z
    .array(z.strictObject({ node: z.string().max(128), reason: z.string().max(2000) }))
    .max(64)
    .optional(),
});
export type JobRecord = z.infer<typeof JobRecord>;

/**
 * Opens the jobs bucket of the cluster the provider is scoped to (JetStream: `flock_<cluster>_jobs`).
 * `cluster`, when given, must match the provider's: a guard against writing into another cluster.
 */
export async function openJobsBucket(stores: StoreProvider, cluster?: string): Promise<KvStore> {
  if (cluster !== undefined && stores.cluster !== undefined && stores.cluster !== cluster) {
    throw new Error(`store provider is scoped to cluster "${stores.cluster}", not "${cluster}"`);
  }
  return stores.kv(JOBS_BUCKET);
}

/** Writes a job's line. */
export async function putJobRecord(kv: KvStore, record: JobRecord): Promise<number> {
  return kv.put(record.id, new TextEncoder().encode(JSON.stringify(JobRecord.parse(record))));
}

/** Decodes one job line, or undefined when it is not one. */
export function parseJobRecord(value: Uint8Array): JobRecord | undefined {
  try {
    const parsed = JobRecord.safeParse(JSON.parse(new TextDecoder().decode(value)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Reads every job line; malformed entries are skipped and reported in `bad`. */
export async function readJobRecords(kv: KvStore): Promise<{ jobs: JobRecord[]; bad: string[] }> {
  const jobs: JobRecord[] = [];
  const bad: string[] = [];
  for (const key of await kv.keys()) {
    const entry = await kv.get(key);
    if (!entry) continue;
    const record = parseJobRecord(entry.value);
    if (record) jobs.push(record);
    else bad.push(key);
  }
  return { jobs: jobs.sort((a, b) => a.id.localeCompare(b.id)), bad };
}
