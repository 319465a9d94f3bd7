/**
 * The coordinator's fenced state record on the memory store (test/contract/fenced-record.ts); the
 * JetStream variant is test/integration/fenced-record-jetstream.test.ts.
 */
import { MemoryStores } from "../../runtime/store/index.js";
import { fencedRecordContract } from "../contract/fenced-record.js";

fencedRecordContract("memory", () => new MemoryStores());
