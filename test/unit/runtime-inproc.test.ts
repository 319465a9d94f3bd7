import { InProcBus } from "../../runtime/transport/index.js";
import { runtimeContract } from "../contract/runtime.js";

// A small max payload so the chunking path is exercised as it is against NATS.
const bus = new InProcBus(256 * 1024);
runtimeContract("inproc", async () => bus.connect(), { maxPayload: 256 * 1024 });
