/** Durable state: KV buckets and blobs, in JetStream or in memory, behind one contract. */
export {
  KvConflictError,
  landedRevision,
  type KvEntry,
  type KvStore,
  type BlobStore,
  type StoreProvider,
} from "./types.js";
export { MemoryStores, type MemoryStoresOptions } from "./memory.js";
export { JetStreamStores, type JetStreamStoresOptions } from "./jetstream.js";
export { InvalidStoreNameError, checkBucketName, checkKey, encodeKeyToken, decodeKeyToken } from "./names.js";
