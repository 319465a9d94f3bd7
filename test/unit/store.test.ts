/**
 * The store contract (test/contract/store.ts) on the memory provider, on a fake clock. The same
 * contract runs against JetStream in test/integration/store-jetstream.test.ts.
 */
import { MemoryStores } from "../../runtime/store/index.js";
import { storeContract } from "../contract/store.js";

storeContract("memory", () => {
  let t = 0;
  return { stores: new MemoryStores({ clock: { now: () => t } }), advance: async (ms) => void (t += ms) };
});
