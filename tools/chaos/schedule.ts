/**
 * The fault plan of a chaos run: which faults, in which order, at which committed step, held for
 * how long. A pure function of the seed and the options, so `--seed S` replays the same plan.
 * @module
 */
import { createRng, type Rng } from "./rng.js";

/** Every fault the harness can inject. */
export const FAULT_KINDS = [
  "kill",
  "pause",
  "partition",
  "slow",
  "broker",
  "coordinator",
  "coordinator-pause",
  "total",
  "jetstream-outage",
] as const;
/** One kind of fault. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * Faults after which no process holds the parameters, so the job restores from its latest
 * complete checkpoint and redoes the steps after it: every daemon SIGKILLed at once (`total`), or
 * every nats-server stopped for longer than the daemons' identity TTL (`jetstream-outage`: every
 * daemon re-incarnates and its actors die). The only faults allowed to cost committed steps.
 */
export const DURABILITY_FAULT_KINDS: readonly FaultKind[] = ["total", "jetstream-outage"];

/** The faults some process outlives (one node, one link, one server): no committed step may be lost. */
export const NODE_FAULT_KINDS: readonly FaultKind[] = FAULT_KINDS.filter(
  (k) => !DURABILITY_FAULT_KINDS.includes(k),
);

/**
 * TTL of a daemon's identity lease: `runtime/daemon/node.ts` `claim()` uses max(15 s, 3 × the
 * failure deadline) unless told otherwise, and the chaos daemons are not told otherwise. A
 * JetStream outage longer than this costs every daemon its identity (it re-incarnates).
 */
export const IDENTITY_TTL_MS = 15_000;

/** One fault of the plan. Targets are picked at injection time from `targetDraw` (see faults.ts). */
export interface PlannedFault {
  index: number;
  kind: FaultKind;
  /** Injected once this many steps have committed and the previous fault has recovered. */
  atStep: number;
  /** How long the fault lasts before it is healed (ms): down time, pause, cut or slowdown. */
  holdMs: number;
  /** A draw in [0, 1) that picks the target among those eligible when the fault fires. */
  targetDraw: number;
  /** `slow` only: one-way latency added in both directions of the node's link (ms). */
  latencyMs?: number;
}

/** Options of {@link planFaults}. */
export interface PlanOptions {
  seed: number;
  kinds: readonly FaultKind[];
  /** Faults in all; at least one of each kind. */
  count: number;
  /** Committed steps of the whole job. */
  totalSteps: number;
  /**
   * The job's checkpoint interval (steps). A durability fault is planned no earlier than a few
   * steps past the first checkpoint: before it there is nothing to restore from.
   */
  checkpointEvery?: number;
}

/** Hold time ranges by kind (ms): long enough to cross the 2 s failure deadline most of the time. */
const HOLD_MS: Record<FaultKind, [number, number]> = {
  kill: [500, 2000], // down time before the node restarts with the same id
  pause: [2500, 4000], // SIGSTOP → SIGCONT
  partition: [2500, 4000], // proxy cut → heal
  slow: [4000, 6000], // latency on the node's link
  broker: [1500, 3000], // nats-server down time
  coordinator: [500, 2000], // the lease holder's node down time
  "coordinator-pause": [3500, 5000], // the lease holder SIGSTOPped past the lease TTL (3 s), then SIGCONT
  total: [3000, 6000], // every daemon down at once, then all restarted
  // every nats-server down past the identity TTL (plus the renewal interval and slack), then restarted with its store
  "jetstream-outage": [IDENTITY_TTL_MS + 2000, IDENTITY_TTL_MS + 6000],
};

/** Steps past the first checkpoint before a durability fault may fire (its manifest is written after the step commits). */
const AFTER_FIRST_CHECKPOINT = 5;

/** Share of the job's steps over which faults are spread; the rest lets the last recovery finish. */
const SPREAD = 0.75;

/**
 * Plans `count` faults: each kind of `kinds` once in a seeded order, then seeded draws from
 * `kinds` (the coordinator fault included: the job's coordinator keeps a standby on another live
 * node, placed anew after every takeover). Faults are spread evenly over the first 75% of the
 * steps with seeded jitter; a durability fault is moved past the first checkpoint (and the ones
 * after it with it, so that steps still increase).
 */
export function planFaults(opts: PlanOptions): PlannedFault[] {
  const kinds = [...new Set(opts.kinds)];
  if (kinds.length === 0) return [];
  const rng = createRng(opts.seed ^ 0x5bd1e995);
  const count = Math.max(opts.count, kinds.length);
  const order: FaultKind[] = rng.shuffle(kinds);
  while (order.length < count) order.push(rng.pick(kinds));
  const first = Math.max(5, Math.round(opts.totalSteps * 0.04));
  const span = Math.max(order.length, Math.floor(opts.totalSteps * SPREAD) - first);
  const gap = span / order.length;
  const earliest = (opts.checkpointEvery ?? 25) + AFTER_FIRST_CHECKPOINT;
  let last = 0;
  return order.map((kind, index) => {
    let atStep = Math.round(first + index * gap + rng.between(0, gap * 0.4));
    if (DURABILITY_FAULT_KINDS.includes(kind)) atStep = Math.max(atStep, earliest);
    atStep = Math.max(atStep, last + 1);
    last = atStep;
    return plan(rng, kind, index, atStep);
  });
}

function plan(rng: Rng, kind: FaultKind, index: number, atStep: number): PlannedFault {
  const [lo, hi] = HOLD_MS[kind];
  const fault: PlannedFault = {
    index,
    kind,
    atStep,
    holdMs: Math.round(rng.between(lo, hi)),
    targetDraw: rng.next(),
  };
  // A straggler, not a death: the step's round trip (step in, params in, done out) takes 2× the
  // latency, past the coordinator's 2 s patience, while heartbeats, shifted once by the latency
  // plus one 500 ms interval, still arrive inside the 2 s failure deadline. A bandwidth cap would
  // not do: a step moves ~0.7 MB per node, so any cap that slows it queues the heartbeats behind
  // the parameters and the node is declared dead, which kill, pause and partition already cover.
  if (kind === "slow") fault.latencyMs = Math.round(rng.between(1100, 1400));
  return fault;
}

/** Parses a comma-separated list of fault kinds. */
export function parseFaultKinds(text: string): FaultKind[] {
  const kinds = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = kinds.filter((k) => !(FAULT_KINDS as readonly string[]).includes(k));
  if (bad.length > 0)
    throw new RangeError(`unknown fault kind(s) ${bad.join(", ")}: use ${FAULT_KINDS.join(", ")}`);
  return [...new Set(kinds)] as FaultKind[];
}
