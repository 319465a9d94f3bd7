/** The coordinator's fenced state record (test/contract/fenced-record.ts) on JetStream KV. */
import { JetStreamStores } from "../../runtime/store/index.js";
import { fencedRecordContract } from "../contract/fenced-record.js";
import { sharedJetStream } from "../helpers/index.js";

const nc = sharedJetStream();
fencedRecordContract("jetstream", () => new JetStreamStores(nc(), { cluster: "fencedtest" }));
