/**
 * Heterogeneous balancing (`balance: "throughput"`) on the embedded default (in-process bus,
 * in-memory stores, trainers in worker threads), with node-2's trainer slowed by a test-only fault
 * (an extra sleep per sample of each gradient): the slowed node gets the smaller share, balanced
 * steps are faster than equal shares, every sample still counts once and the replicas agree.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveJobSpec, runJob, type TrainResult } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import type { JobEvent } from "../../messages/index.js";
import { scaleTimeout } from "../helpers/index.js";

const MNIST_TRAIN = 8000;
const GLOBAL_BATCH = 64;
/** node-2's extra ms per sample: at an equal share (32) about 32 ms more than node-1's ~10 ms. */
const SLOW_MS_PER_SAMPLE = 1;
/** Steps left out at the start of each job: placement, warm-up and the shares settling. */
const WARMUP_STEPS = 20;

type StepEvent = Extract<JobEvent, { type: "job.step" }>;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** Time between consecutive commits (ms), after the warm-up. */
function stepTimes(events: StepEvent[]): number[] {
  const steady = events.filter((e) => !e.replay && e.step > WARMUP_STEPS);
  return steady.slice(1).map((e, i) => e.at - (steady[i]?.at ?? e.at));
}

function assertExactlyOnce(r: TrainResult, events: StepEvent[]): void {
  assert.equal(r.status, "completed");
  assert.deepEqual(r.samplesPerEpoch, [MNIST_TRAIN], "every sample counted once");
  assert.ok(r.ledgerAudit.exact, JSON.stringify(r.ledgerAudit));
  assert.equal(r.replicasConsistent, true, `hash mismatches: ${JSON.stringify(r.hashMismatches)}`);
  assert.deepEqual(r.commitAudit.mismatches, []);
  const steps = events.filter((e) => !e.replay).map((e) => e.step);
  assert.deepEqual(
    steps,
    steps.map((_, i) => i + 1),
    "steps commit once each, in order",
  );
}

async function runOne(
  cluster: EmbeddedCluster,
  balance: "equal" | "throughput",
  seed: number,
): Promise<{ result: TrainResult; events: StepEvent[] }> {
  const events: StepEvent[] = [];
  const spec = resolveJobSpec("mnist", {
    epochs: 1,
    minWorkers: 2,
    maxWorkers: 2,
    globalBatch: GLOBAL_BATCH,
    seed,
    balance,
  });
  const result = await runJob(cluster.handle, spec, {
    onEvent: (e) => void (e.type === "job.step" && events.push(e)),
  });
  return { result, events };
}

test(
  "with one node slowed, throughput shares give it less and steps are faster than equal shares",
  { timeout: scaleTimeout(300_000) },
  async (t) => {
    const cluster = await EmbeddedCluster.start({
      nodes: 2,
      faults: { "node-2": { trainer: { extraMsPerSample: SLOW_MS_PER_SAMPLE } } },
    });
    t.after(() => cluster.close());
    const times = { equal: [] as number[], throughput: [] as number[] };
    const slowShares: number[] = [];
    // Interleaved, so that a change in the machine's load hits both modes alike.
    for (const [round, balance] of (["equal", "throughput", "equal", "throughput"] as const).entries()) {
      const { result, events } = await runOne(cluster, balance, 11 + round);
      assertExactlyOnce(result, events);
      times[balance].push(...stepTimes(events));
      t.diagnostic(
        `${balance} round ${round}: wall ${result.wallSeconds.toFixed(1)} s, accuracy ${result.accuracy}`,
      );
      if (balance === "equal") {
        assert.ok(events.every((e) => e.shares === undefined));
        continue;
      }
      for (const e of events.filter((x) => x.step > WARMUP_STEPS && !x.replay)) {
        const shares = e.shares ?? [];
        assert.equal(
          shares.reduce((a, s) => a + s.n, 0),
          e.samples,
          "the shares announced are the step's samples",
        );
        const slow = shares.find((s) => s.node === "node-2")?.n;
        if (slow !== undefined && e.samples === GLOBAL_BATCH) slowShares.push(slow);
      }
    }
    const equalMs = median(times.equal);
    const balancedMs = median(times.throughput);
    const slowShare = median(slowShares);
    t.diagnostic(
      `median step: equal ${equalMs.toFixed(1)} ms, throughput ${balancedMs.toFixed(1)} ms ` +
        `(ratio ${(balancedMs / equalMs).toFixed(2)}); node-2's median share ${slowShare} of ${GLOBAL_BATCH}`,
    );
    assert.ok(slowShares.length > 50, `full steps measured: ${slowShares.length}`);
    assert.ok(slowShare <= 0.35 * GLOBAL_BATCH, `the slowed node's median share ${slowShare}`);
    assert.ok(balancedMs <= 0.85 * equalMs, `balanced ${balancedMs} ms vs equal ${equalMs} ms a step`);
  },
);
