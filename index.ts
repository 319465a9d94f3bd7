/**
 * flock's public API: training jobs, and the actor runtime they are built on.
 * Everything else is internal (siblings and tests import it by path).
 */
export { train, type TrainOptions, type TrainOutcome } from "./actors/train.js";
export {
  runJob,
  submitJob,
  followJob,
  cancelJob,
  resolveJobSpec,
  saveJobModel,
  JobFailedError,
  UnknownJobError,
  type TrainResult,
  type ClusterHandle,
  type ExportedModel,
  type FlockModelInfo,
} from "./actors/api.js";
export { BadDataError } from "./actors/compute/errors.js";
export { connectCluster, type ConnectOptions } from "./actors/remote.js";
export { EmbeddedCluster } from "./actors/embedded.js";
export { JobSpec, InvalidJobSpecError, parseJobSpec, type JobSpecInput } from "./actors/job/spec.js";
export { EXAMPLES, exampleNames } from "./actors/job/examples.js";
export { setupNode } from "./actors/kinds.js";
export {
  ActorSystem,
  supervision,
  AskTimeoutError,
  ActorNotFoundError,
  ActorExistsError,
  RemoteActorError,
  ActorSystemStoppedError,
  type ActorRef,
  type ActorContext,
  type Behavior,
  type Message,
  type SpawnOptions,
  type SupervisionPolicy,
} from "./runtime/actor/index.js";
export { NatsTransport, InProcBus, type Transport, type NatsOptions } from "./runtime/transport/index.js";
export { startNode, type FlockNode, type NodeOptions } from "./runtime/daemon/index.js";
export {
  MessageRegistry,
  MessageDecodeError,
  stepsToCount,
  type JobEvent,
  type StepSummary,
} from "./messages/index.js";
