import { ComputeEngine } from "../compute/engine.js";
import { knownDatasets } from "../compute/datasets.js";
import { BadDataError, UnknownDatasetError } from "../compute/errors.js";
import type { JobSpec } from "./spec.js";
import type { StoreProvider } from "../../runtime/store/types.js";
import { CHECKPOINTS_BUCKET } from "./names.js";
import { resolveInit } from "./init-source.js";
import { dataAccess, fetchStoredSources, storedUrls } from "../compute/dataset-store-cache.js";
import { DATASETS_BUCKET, readManifest } from "../compute/dataset-store.js";
import { DATA_LIMITS } from "../compute/dataset-spec.js";
import { flockUrlName } from "../compute/dataset-shards.js";
import { profileStream, storeShardReader } from "../compute/dataset-stream-profile.js";

/**
 * Fails fast, before anything is placed, when the dataset does not exist, a dataset file holds bad
 * data (`BadDataError`, naming the file, line and field) or the model's tensors do not fit the
 * data: loads the dataset and builds the model once against it on the pure-JS backend. With
 * `init`, also reads the saved weights (`job://ID` from `stores`' object store) and checks the
 * `freeze` names against the built model. A `flock://` dataset must be complete in `stores`' datasets
 * bucket: its shards are fetched into this machine's cache and verified by hash — except with
 * `stream: true`, whose shards are read once straight from the store, one at a time, to check
 * them and compute the profile (see {@link withStreamProfile}).
 * Returns the spec to place: the given one, with its dataset's profile when it streams.
 */
export async function checkJobFits(spec: JobSpec, stores?: StoreProvider): Promise<JobSpec> {
  if (typeof spec.dataset === "string" && !knownDatasets().includes(spec.dataset))
    throw new UnknownDatasetError(spec.dataset, knownDatasets());
  await refuseWholeLoadsPastLimits(spec, stores);
  const checked = await withStreamProfile(spec, stores);
  const engine = await ComputeEngine.create({
    model: checked.model,
    dataset: checked.dataset,
    backend: "cpu",
    seed: checked.seed,
    init: await resolveInit(checked.init, stores && (() => stores.blobs(CHECKPOINTS_BUCKET))),
    freeze: checked.freeze,
    keepZeros: checked.keepZeros,
    task: checked.task,
    mlm: checked.mlm,
    // A streamed dataset reads no shard to build (its manifests and profile are enough).
    stored: await fetchStoredSources(checked.dataset, stores && dataAccess(stores), { streamed: "none" }),
  });
  engine.dispose();
  return checked;
}

/**
 * A spec whose dataset streams (`stream: true`) with its profile computed afresh from the stored
 * shards (a profile the job file carries is replaced); any other spec as it is. Throws
 * `BadDataError` for bad data, `DatasetNotFoundError` / `IncompleteDatasetError` for a dataset
 * that is not (wholly) in the store.
 */
export async function withStreamProfile(spec: JobSpec, stores?: StoreProvider): Promise<JobSpec> {
  const dataset = spec.dataset;
  if (typeof dataset === "string" || dataset.format === "images" || !dataset.stream) return spec;
  if (!stores)
    throw new BadDataError(dataset.source, "this process has no object store to read the dataset from");
  const { profile: _old, ...unprofiled } = dataset;
  const fetched = await fetchStoredSources(unprofiled, dataAccess(stores), { streamed: "none" });
  const manifests = Object.fromEntries(Object.entries(fetched ?? {}).map(([url, s]) => [url, s.manifest]));
  const blobs = await stores.blobs(DATASETS_BUCKET);
  const profile = await profileStream(unprofiled, manifests, spec.seed, storeShardReader(blobs));
  return { ...spec, dataset: { ...unprofiled, profile } };
}

/**
 * Refuses a job that would load a stored CSV/JSONL dataset whole (no `stream: true`) when it is
 * past the whole-file bounds `readTable` keeps ({@link DATA_LIMITS}): `flock data put` streams a
 * file of any size, but a job without `stream` has every node hold it all. Only the manifests
 * are read (before any shard is fetched). A missing dataset is left to the fetch, which says so.
 */
async function refuseWholeLoadsPastLimits(spec: JobSpec, stores?: StoreProvider): Promise<void> {
  const dataset = spec.dataset;
  if (!stores || typeof dataset === "string" || dataset.format === "images" || dataset.stream) return;
  const blobs = await stores.blobs(DATASETS_BUCKET);
  for (const url of storedUrls(dataset)) {
    const name = flockUrlName(url);
    const m = name === undefined ? undefined : await readManifest(blobs, name).catch(() => undefined);
    if (!m || (m.records <= DATA_LIMITS.records && m.file.bytes <= DATA_LIMITS.fileBytes)) continue;
    throw new BadDataError(
      url,
      `holds ${m.records} records (a ${m.file.bytes}-byte file), more than a job loads whole ` +
        `(${DATA_LIMITS.records} records, ${DATA_LIMITS.fileBytes} bytes): ` +
        `set "stream": true in the job's dataset to train on it shard by shard`,
    );
  }
}
