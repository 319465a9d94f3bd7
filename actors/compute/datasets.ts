import { UnknownDatasetError } from "./errors.js";
import type { Dataset } from "./dataset-core.js";
import { loadMnist } from "./dataset-mnist.js";
import { loadSpamAssassin } from "./dataset-spam.js";
import { loadFileDataset } from "./dataset-file.js";
import { loadImageDataset } from "./dataset-images.js";
import type { DatasetSpec } from "./dataset-spec.js";
import { readTable, type RawTable } from "./dataset-read.js";
import { readStoredTable, type StoredSources } from "./dataset-store-cache.js";
import { loadStreamedDataset } from "./dataset-stream.js";

export type { Batch, Dataset } from "./dataset-core.js";

type Loader = () => Promise<Dataset>;

const registry: Record<string, Loader> = {
  mnist: loadMnist,
  "spam-assassin": loadSpamAssassin,
};

const cache = new Map<string, Promise<Dataset>>();

/** Names accepted by {@link loadDataset}. */
export function knownDatasets(): string[] {
  return Object.keys(registry).sort();
}

/**
 * Loads a dataset: a built-in by name, once per process (or worker thread): later calls share
 * the first load; throws {@link UnknownDatasetError} listing the known names. A dataset from
 * files is read afresh each time (files change between jobs; one worker loads it once per job),
 * with `seed` (the job's) choosing a `{ fraction }` test split; it rejects with `BadDataError`.
 * A `flock://` source is read from `stored`, the shards `fetchStoredSources` put in the node's cache.
 */
export function loadDataset(spec: DatasetSpec, seed = 0, stored?: StoredSources): Promise<Dataset> {
  if (typeof spec !== "string") {
    // A flock:// source is read from the shards the actor side fetched into the node's cache.
    const read = (url: string, format: "csv" | "jsonl"): RawTable =>
      url.startsWith("flock://") ? readStoredTable(url, format, stored) : readTable(url, format);
    try {
      return Promise.resolve(
        spec.format === "images"
          ? loadImageDataset(spec, seed, stored)
          : spec.stream // read shard by shard as batches ask (dataset-stream.ts)
            ? loadStreamedDataset(spec, stored)
            : loadFileDataset(spec, seed, read),
      );
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }
  const name = spec;
  const loader = Object.hasOwn(registry, name) ? registry[name] : undefined;
  if (loader === undefined) return Promise.reject(new UnknownDatasetError(name, knownDatasets()));
  let pending = cache.get(name);
  if (pending === undefined) {
    pending = loader();
    cache.set(name, pending);
    pending.catch(() => cache.delete(name));
  }
  return pending;
}
