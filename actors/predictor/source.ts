/**
 * Where the model of `flock predict` comes from: a folder `flock train --out` wrote, or a job of
 * the cluster (`job://ID` or a bare id) — its latest scored model, from the object store, exported
 * with the job's spec as `flock train --out` would, into a temporary folder read back at once.
 * @module
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StoreProvider } from "../../runtime/store/types.js";
import { decodeJob } from "../coordinator/codec.js";
import { SavedModelError } from "../compute/errors.js";
import { JOB_STATE_BUCKET } from "../job/names.js";
import { exportModel, fetchStoredModel } from "../job/model-export.js";
import { readModelDir, type ModelBundle } from "./model.js";

const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The job a model argument names (`job://ID`, or a bare id that is no existing folder), if any. */
export function jobOf(modelArg: string): string | undefined {
  if (modelArg.startsWith("job://")) return modelArg.slice("job://".length);
  return !existsSync(modelArg) && JOB_ID.test(modelArg) ? modelArg : undefined;
}

/** Reads the model a job of the cluster scored last; throws when the cluster has none. */
export async function jobModel(stores: StoreProvider, job: string): Promise<ModelBundle> {
  if (!JOB_ID.test(job)) throw new SavedModelError(`job://${job}`, "is not a job id");
  const entry = await (await stores.kv(JOB_STATE_BUCKET)).get(job);
  if (!entry) throw new SavedModelError(`job://${job}`, "the cluster has no such job (no state record)");
  const { spec } = decodeJob(entry.value);
  const stored = await fetchStoredModel(stores, job);
  const dir = mkdtempSync(join(tmpdir(), "flock-predict-"));
  try {
    await exportModel(spec, stored, dir);
    return readModelDir(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
