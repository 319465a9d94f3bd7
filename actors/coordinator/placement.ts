import type { NodeInfo } from "../../runtime/cluster/types.js";
import { ShardLedger } from "../ledger/ledger.js";
import { jobNames } from "../job/names.js";
import type { JobSpec } from "../job/spec.js";
import type { Prepared, ReducerMap } from "../trainer/protocol.js";
import { type Core, type ReducerSpawn } from "./model.js";
import type { Member, PersistedJob } from "./state.js";
import { startStep } from "./step.js";
import { ensureStandby, spawnEvaluator } from "./takeover.js";
import { persist, record } from "./records.js";
import { requestCheckpoint } from "./checkpoints.js";
import { dataReady, unplacedNodes } from "./data-checks.js";

// ---- pure decisions ----

/** Nodes alive with a free slot, not in `exclude` (sorted for determinism). */
export function candidates(alive: readonly NodeInfo[], exclude: readonly string[]): string[] {
  return alive
    .filter((n) => n.freeSlots > 0 && !exclude.includes(n.node))
    .map((n) => n.node)
    .sort();
}

/** The hash all trainers initialised to; throws when they disagree (different seeds or code). */
export function agreedInit(prepared: readonly Prepared[]): Prepared {
  const hashes = new Set(prepared.map((p) => p.hash));
  const first = prepared[0];
  if (!first || hashes.size !== 1)
    throw new Error(`trainers initialised different parameters: ${[...hashes].join(", ")}`);
  return first;
}

/** How many reducers, their parameter bounds, and their nodes (round-robin over the members). */
export function reducerLayout(
  spec: JobSpec,
  paramCount: number,
  nodes: readonly string[],
): { bounds: number[]; nodes: string[] } {
  const R = Math.max(1, Math.min(spec.reducers ?? Math.min(4, spec.maxWorkers), paramCount));
  const bounds = Array.from({ length: R + 1 }, (_, r) => Math.round((r * paramCount) / R));
  return { bounds, nodes: Array.from({ length: R }, (_, r) => nodes[r % nodes.length] ?? "") };
}

/** The actor name of reducer r of generation `gen`. */
export function reducerName(jobId: string, r: number, gen: number): string {
  return `${jobNames.reducer(jobId, r)}.g${gen}`;
}

/** Trainer batch sizes of one step: `globalBatch` split over the members sorted by node. */
export function batchShares(
  members: readonly Member[],
  globalBatch: number,
): Array<{ member: Member; size: number }> {
  const sorted = [...members].sort((a, b) => a.node.localeCompare(b.node));
  const share = Math.floor(globalBatch / sorted.length);
  const extra = globalBatch % sorted.length;
  return sorted.map((member, i) => ({ member, size: share + (i < extra ? 1 : 0) }));
}

/** The state of a fresh job, before anything is placed. */
export function freshJob(jobId: string, spec: JobSpec, term: number, startedAt: number): PersistedJob {
  return {
    job: jobId,
    spec,
    state: "running",
    term,
    step: 0,
    epoch: 1,
    members: [],
    reducers: { addresses: [], bounds: [] },
    reducerGen: 0,
    paramCount: 0,
    ledger: ShardLedger.create(1, spec.epochs).snapshot(),
    checkpointStep: null,
    startedAt,
    backends: [],
    evals: [],
    membership: [],
    hashChecks: { checked: 0, consistent: true, mismatches: [] },
    commitAudit: { checked: 0, mismatches: [] },
    lastLoss: NaN,
  };
}

/** Nodes that may get a trainer now: {@link candidates} whose data check passed (see `data-checks.ts`). */
export function trainable(m: Core, exclude: readonly string[]): string[] {
  return candidates(m.w.alive, exclude).filter((node) => dataReady(m, node));
}

// ---- the placement sequence: wait for nodes → members → reducers → first step ----

/** Fresh job: wait for enough nodes, then spawn trainers, loaders, reducers and an evaluator. */
export function place(m: Core): void {
  const startedAt = m.w.now;
  m.s.p = freshJob(m.cfg.job, m.cfg.spec, m.s.term, startedAt);
  m.s.ledger = undefined; // no leases until the job is placed
  m.s.phase = { name: "placing", startedAt, stage: "waiting" };
  ensureStandby(m);
  tryPlace(m);
}

/** While waiting for nodes (on each tick): places members once minWorkers nodes have a slot. */
export function tryPlace(m: Core): void {
  const ph = m.s.phase;
  if (ph.name !== "placing" || ph.stage !== "waiting") return;
  const { minWorkers, maxWorkers, placementTimeoutMs } = m.cfg.spec;
  const nodes = trainable(m, []).slice(0, maxWorkers);
  if (nodes.length >= minWorkers) {
    m.s.phase = { ...ph, stage: "members" };
    const incs = Object.fromEntries(
      m.w.alive.filter((n) => nodes.includes(n.node)).map((n) => [n.node, n.inc]),
    );
    m.emit({ kind: "placeMembers", gen: m.s.generation, term: m.s.term, nodes, incs });
  } else if (m.w.now - ph.startedAt > placementTimeoutMs) {
    const lacking = unplacedNodes(m).map((u) => `; ${u.node}: ${u.reason}`);
    m.fail(
      `placement failed: only ${nodes.length} node(s) with a free slot and the job's data after ${placementTimeoutMs} ms; the job needs minWorkers=${minWorkers}${lacking.join("")}`,
    );
  }
}

/** Members are prepared (initial parameters): check they agree, then place the reducers. */
export function onMembersPlaced(m: Core, members: Member[], prepared: Prepared[]): void {
  const ph = m.s.phase;
  if (ph.name !== "placing" || ph.stage !== "members") return;
  let init: Prepared;
  try {
    init = agreedInit(prepared);
  } catch (error) {
    return m.fail(`placement failed: ${(error as Error).message}`);
  }
  const source = members[0];
  if (!source) return m.fail("placement failed: no member placed");
  const layout = reducerLayout(
    m.cfg.spec,
    init.paramCount,
    members.map((x) => x.node),
  );
  m.s.phase = { ...ph, stage: "reducers", members, prepared };
  m.emit({
    kind: "startReducers",
    gen: m.s.generation,
    term: m.s.term,
    spawns: layout.nodes.map(
      (node, r) => ({ r, node, name: reducerName(m.cfg.job, r, 0) }) satisfies ReducerSpawn,
    ),
    bounds: layout.bounds,
    source: source.trainer,
    trainers: members.map((x) => x.trainer),
  });
}

/** Reducers are loaded and trainers know them: the job is placed; persist it and start step 1. */
export function onReducersReady(m: Core, reducers: ReducerMap): void {
  const ph = m.s.phase;
  if (ph.name !== "placing" || ph.stage !== "reducers" || !ph.members || !ph.prepared) return;
  const { members, prepared } = ph;
  const first = prepared[0];
  if (!first) return;
  const p = m.s.p;
  if (!p) return;
  m.s.ledger = ShardLedger.create(first.trainSize, m.cfg.spec.epochs);
  p.members = members;
  p.reducers = reducers;
  p.paramCount = first.paramCount;
  p.backends = [...new Set(prepared.map((x) => x.backend))].sort();
  members.forEach((member, i) =>
    record(m, { kind: "join", node: member.node, detail: `trainer on ${prepared[i]?.backend ?? "?"}` }),
  );
  p.ledger = m.s.ledger.snapshot();
  persist(m);
  // Step 0 is checkpointed too: losing every node before the first periodic checkpoint then
  // restarts the job from its start (stepsLost < checkpointEvery) instead of failing it.
  requestCheckpoint(m, 0);
  spawnEvaluator(m);
  m.log(
    "info",
    { members: members.map((x) => x.node), reducers: reducers.addresses.length, trainSize: first.trainSize },
    "job placed",
  );
  startStep(m);
}
