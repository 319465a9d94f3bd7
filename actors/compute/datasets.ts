import { UnknownDatasetError } from "./errors.js";
import type { Dataset } from "./dataset-core.js";
import { loadMnist } from "./dataset-mnist.js";
import { loadSpamAssassin } from "./dataset-spam.js";

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
 * Loads a dataset by name, once per process (or worker thread): later calls share the first
 * load. Throws {@link UnknownDatasetError} listing the known names.
 */
export function loadDataset(name: string): Promise<Dataset> {
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
