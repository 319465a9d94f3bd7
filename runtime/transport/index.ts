export type { Transport, TransportStatus, FrameHandler, Unsubscribe } from "./transport.js";
export { subjectMatches } from "./transport.js";
export { InProcBus, InProcTransport } from "./inproc.js";
export { NatsTransport, natsConnectionOptions, natsAuthFromEnv, type NatsOptions } from "./nats.js";
export {
  BadCredsError,
  daemonIdentity,
  parseCreds,
  credsFileAuthenticator,
  formatSeedCreds,
  type Creds,
} from "./creds.js";
