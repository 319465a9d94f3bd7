/** The chaos harness: seeded faults against real processes, checked against the invariants. */
export { registerChaosCommand } from "./command.js";
export {
  runChaos,
  defaultEpochs,
  replayCommand,
  ACCURACY_TOLERANCE,
  type ChaosOptions,
  type ChaosReport,
  type ReportedFault,
} from "./run.js";
export { planFaults, parseFaultKinds, FAULT_KINDS, type FaultKind, type PlannedFault } from "./schedule.js";
export {
  checkInvariants,
  stepsMonotonic,
  INVARIANTS,
  type InvariantName,
  type InvariantResult,
  type Observations,
} from "./invariants.js";
export { createRng, type Rng } from "./rng.js";
