import type { SavedWeight } from "../compute/fine-tune.js";
import type { BlobStore } from "../../runtime/store/types.js";
import { StoredModelError, decodeStoredModel, modelBlobName, storedWeights } from "./model-store.js";

/**
 * What a compute engine is given for a spec's `init`: a `file://` URL as is (the engine reads
 * the folder in its own thread), and for `job://ID` the weights of the model job ID's evaluator
 * kept in the object store, read here because only the actor side reaches the store. Every
 * trainer reads the same blob, so version 0 agrees; a source job still running may overwrite it
 * between two trainers' reads, and the coordinator then fails the placement on their hashes.
 * Throws {@link StoredModelError} when the model is missing or unreadable.
 */
export async function resolveInit(
  init: string | undefined,
  blobs: (() => Promise<BlobStore>) | undefined,
): Promise<string | SavedWeight[] | undefined> {
  if (init === undefined || !init.startsWith("job://")) return init;
  const job = init.slice("job://".length);
  const name = modelBlobName(job);
  if (!blobs) throw new StoredModelError(`init ${init}: this node has no object store to read ${name} from`);
  const blob = await (await blobs()).get(name);
  if (!blob) throw new StoredModelError(`init ${init}: no model of job ${job} in the object store (${name})`);
  return storedWeights(decodeStoredModel(blob, name));
}
