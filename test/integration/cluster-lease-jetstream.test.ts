/** The lease contract (test/contract/lease.ts) on JetStream KV on a real nats-server, on real time. */
import { JetStreamStores } from "../../runtime/store/index.js";
import { leaseContract } from "../contract/lease.js";
import { sharedJetStream } from "../helpers/index.js";
import { realTime } from "../helpers/time.js";

const nc = sharedJetStream();
leaseContract(
  "jetstream",
  () => ({ time: realTime(), stores: new JetStreamStores(nc(), { cluster: "leasetest" }) }),
  1000,
);
