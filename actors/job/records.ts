import type { StoreProvider } from "../../runtime/store/types.js";
import type { JobRecord } from "../coordinator/host.js";

/** Bucket of job lines that `flock status` reads (key: job id, value: JSON {@link JobRecord}). */
export const JOBS_BUCKET = "jobs";

/** Writes a job's line for `flock status`. */
export async function writeJobRecord(stores: StoreProvider, record: JobRecord): Promise<void> {
  const kv = await stores.kv(JOBS_BUCKET);
  await kv.put(record.id, new TextEncoder().encode(JSON.stringify(record)));
}
