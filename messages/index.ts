/** The message layer: schemas, envelope, codec and chunking. Imports nothing from runtime/ or actors/. */
export {
  Envelope,
  ENVELOPE_VERSION,
  checkEnvelope,
  checkBody,
  decodeBody,
  describeValue,
} from "./envelope.js";
export { createCodec, type Codec } from "./codec.js";
export { MessageRegistry, type MessageSchema } from "./registry.js";
export { MessageDecodeError, MessageTooLargeError, type BadInputReason } from "./errors.js";
export {
  splitFrames,
  isChunk,
  Reassembler,
  CHUNK_HEADER_BYTES,
  type ReassemblerOptions,
} from "./chunking.js";
export {
  SystemMessage,
  SYSTEM_MESSAGES,
  SpawnActor,
  ActorSpawned,
  StopActor,
  Ack,
  Ping,
  Pong,
  Failure,
} from "./system.js";
export {
  BatchRef,
  ParamsSlice,
  JobEvent,
  TrainResult,
  TRAINING_SHARED_MESSAGES,
  stepsToCount,
  stepSummary,
  type StepSummary,
} from "./training.js";
