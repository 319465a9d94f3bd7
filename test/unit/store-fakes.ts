import type { BlobStore } from "../../runtime/store/types.js";

/**
 * A blob store that passes every call to `inner` but fails its `failAt`-th put (1-based) with
 * "connection lost": an upload cut midway, for the tests of what a failed put leaves behind.
 */
export function failingOnPut(inner: BlobStore, failAt: number): BlobStore {
  let puts = 0;
  return {
    get: (n) => inner.get(n),
    list: (p) => inner.list(p),
    delete: (n) => inner.delete(n),
    put: async (n, d) => {
      if (++puts === failAt) throw new Error("connection lost");
      return inner.put(n, d);
    },
  };
}
