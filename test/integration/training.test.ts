/**
 * Elastic training against a real nats-server with daemons as child processes: the fault-free
 * baseline, a trainer's daemon SIGKILLed mid-epoch, a daemon that joins mid-job, the coordinator's
 * node killed, and bad jobs that fail fast.
 */
import assert from "node:assert/strict";
import { after, before, test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { resolveJobSpec, runJob, type ClusterHandle, type TrainResult } from "../../actors/api.js";
import { connectCluster } from "../../actors/remote.js";
import { UnknownDatasetError, ModelDataMismatchError } from "../../actors/compute/errors.js";
import { InvalidJobSpecError } from "../../actors/job/spec.js";
import type { JobEvent } from "../../messages/index.js";
import { startNatsServer, type NatsServerHandle } from "../../tools/natsd/index.js";
import { scaleTimeout, spawnChild, type ChildHandle } from "../helpers/index.js";

const flock = fileURLToPath(new URL("../../bin/flock.js", import.meta.url));
const MNIST_TRAIN = 8000;
let server: NatsServerHandle;
let baseline: TrainResult | undefined;

before(async () => {
  server = await startNatsServer({ jetstream: true });
});
after(async () => {
  await server?.stop();
});

async function daemon(t: TestContext, nodeId: string, cluster: string): Promise<ChildHandle> {
  const d = spawnChild(
    process.execPath,
    [flock, "daemon", "--nats", server.url, "--node-id", nodeId, "--cluster", cluster, "--log-level", "warn"],
    { name: nodeId },
  );
  t.after(async () => {
    await d.stop();
    if (process.env.FLOCK_TEST_LOGS)
      (await import("node:fs")).writeFileSync(
        `${process.env.FLOCK_TEST_LOGS}/${cluster}-${nodeId}.log`,
        d.output(),
      );
  });
  await d.waitForLine(/ready/, scaleTimeout(20_000));
  return d;
}

async function client(t: TestContext, cluster: string, nodes: number): Promise<ClusterHandle> {
  const c = await connectCluster({ servers: server.url, cluster });
  t.after(() => c.close());
  const deadline = Date.now() + scaleTimeout(10_000);
  while (c.aliveNodes().length < nodes) {
    if (Date.now() > deadline) throw new Error(`only ${c.aliveNodes().length} of ${nodes} nodes seen alive`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return c;
}

function assertGuarantees(r: TrainResult, epochs: number): void {
  assert.equal(r.status, "completed");
  assert.equal(r.epochs, epochs);
  assert.deepEqual(r.samplesPerEpoch, Array(epochs).fill(MNIST_TRAIN), "every sample counted once per epoch");
  const audit = r.ledgerAudit;
  assert.ok(audit.exact, JSON.stringify(r.ledgerAudit));
  assert.equal(r.replicasConsistent, true, `hash mismatches: ${JSON.stringify(r.hashMismatches)}`);
  assert.deepEqual(r.commitAudit.mismatches, []);
}

function commitsBy(events: JobEvent[]): number[] {
  return events.flatMap((e) => (e.type === "job.step" ? [e.step] : []));
}

test(
  "two workers train MNIST to ≥ 0.90 with every sample counted once",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    await daemon(t, "a", "t1");
    await daemon(t, "b", "t1");
    const c = await client(t, "t1", 2);
    const events: JobEvent[] = [];
    const result = await runJob(c, resolveJobSpec("mnist", { minWorkers: 2, maxWorkers: 2, seed: 7 }), {
      onEvent: (e) => events.push(e),
    });
    assertGuarantees(result, 2);
    assert.ok(result.accuracy >= 0.9, `accuracy ${result.accuracy}`);
    const steps = commitsBy(events);
    assert.deepEqual(
      steps,
      steps.map((_, i) => i + 1),
      "steps commit once each, in order",
    );
    baseline = result;
  },
);

test(
  "SIGKILL of a trainer's daemon mid-epoch: the job completes with the same guarantees",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    await daemon(t, "a", "t2");
    const b = await daemon(t, "b", "t2");
    const c = await client(t, "t2", 2);
    let killedAt = 0;
    const events: JobEvent[] = [];
    const result = await runJob(c, resolveJobSpec("mnist", { minWorkers: 1, maxWorkers: 2, seed: 7 }), {
      onEvent: (e) => {
        events.push(e);
        if (e.type === "job.step" && e.step === 60 && !killedAt) {
          killedAt = Date.now();
          b.kill("SIGKILL");
        }
      },
    });
    assert.ok(killedAt > 0, "the kill happened mid-job");
    assertGuarantees(result, 2);
    const death = result.membership.find((m) => m.kind === "death" && m.node === "b");
    assert.ok(death, `death of b recorded: ${JSON.stringify(result.membership)}`);
    assert.ok(
      typeof death.recoverySeconds === "number" && death.recoverySeconds < 10,
      `recovery reported: ${death.recoverySeconds}`,
    );
    const firstAfter = events.find((e) => e.type === "job.step" && e.at > killedAt && e.members === 1);
    assert.ok(firstAfter, "a step committed without the dead member");
    if (baseline)
      assert.ok(
        Math.abs(result.accuracy - baseline.accuracy) <= 0.02,
        `accuracy ${result.accuracy} vs fault-free ${baseline.accuracy}`,
      );
  },
);

test(
  "a daemon started mid-job is taken in and contributes to committed steps",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    await daemon(t, "a", "t3");
    const c = await client(t, "t3", 1);
    let started = false;
    const events: JobEvent[] = [];
    const joining: Promise<ChildHandle>[] = [];
    const result = await runJob(
      c,
      resolveJobSpec("mnist", { minWorkers: 1, maxWorkers: 2, epochs: 1, seed: 7 }),
      {
        onEvent: (e) => {
          events.push(e);
          if (e.type === "job.step" && e.step === 20 && !started) {
            started = true;
            joining.push(daemon(t, "late", "t3"));
          }
        },
      },
    );
    await Promise.all(joining);
    assertGuarantees(result, 1);
    assert.ok(
      events.some((e) => e.type === "job.membership" && e.event.kind === "join" && e.event.node === "late"),
      "the late daemon joined",
    );
    assert.ok(
      events.some((e) => e.type === "job.step" && e.members === 2),
      "steps committed with two members",
    );
  },
);

test(
  "killing the coordinator's node twice: each time a standby takes over and places the next one",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    const nodes = {
      a: await daemon(t, "a", "t4"),
      b: await daemon(t, "b", "t4"),
      c: await daemon(t, "c", "t4"),
    };
    const c = await client(t, "t4", 3);
    const killed: string[] = [];
    let takenOverAt: { node: string; step: number } | undefined;
    let cJoined = false;
    const result = await runJob(
      c,
      resolveJobSpec("mnist", { minWorkers: 1, maxWorkers: 2, epochs: 1, seed: 7 }),
      {
        onEvent: (e) => {
          // The active coordinator is placed on the first node in id order ("a"), its standby on
          // "b"; once "b" has taken over it must place a new standby on "c".
          if (e.type === "job.step" && e.step === 30 && killed.length === 0) {
            killed.push("a");
            nodes.a.kill("SIGKILL");
          }
          if (e.type === "job.membership" && e.event.kind === "failover")
            takenOverAt = { node: e.event.node, step: e.step };
          if (e.type === "job.membership" && e.event.kind === "join" && e.event.node === "c") cJoined = true;
          // "b" goes once "c" trains too: a trainer must survive to hold the parameters.
          if (
            e.type === "job.step" &&
            killed.length === 1 &&
            takenOverAt?.node === "b" &&
            cJoined &&
            e.step >= takenOverAt.step + 10
          ) {
            killed.push("b");
            nodes.b.kill("SIGKILL");
          }
        },
      },
    );
    assert.deepEqual(killed, ["a", "b"], JSON.stringify(result.membership));
    assertGuarantees(result, 1);
    const failovers = result.membership.filter((m) => m.kind === "failover").map((m) => m.node);
    assert.deepEqual(failovers, ["b", "c"], JSON.stringify(result.membership));
  },
);

test("bad jobs fail fast with a clear error", { timeout: scaleTimeout(60_000) }, async (t) => {
  const c = await client(t, "t5", 0);
  assert.throws(
    () =>
      resolveJobSpec({
        model: "mnist-mlp",
        dataset: "mnist",
        epochs: 0,
        globalBatch: 64,
        optimizer: { name: "adam", lr: 0.001 },
      }),
    (e: Error) => e instanceof InvalidJobSpecError && /epochs/.test(e.message),
  );
  assert.throws(() => resolveJobSpec("no-such-example"), InvalidJobSpecError);
  const started = Date.now();
  await assert.rejects(
    runJob(
      c,
      resolveJobSpec({
        model: "mnist-mlp",
        dataset: "imagenet",
        epochs: 1,
        globalBatch: 64,
        optimizer: { name: "adam", lr: 0.001 },
      }),
    ),
    (e: Error) => e instanceof UnknownDatasetError && /mnist/.test(e.message),
  );
  await assert.rejects(
    runJob(
      c,
      resolveJobSpec({
        model: "spam-bow",
        dataset: "mnist",
        epochs: 1,
        globalBatch: 64,
        optimizer: { name: "adam", lr: 0.001 },
      }),
    ),
    (e: Error) => e instanceof ModelDataMismatchError && /784/.test(e.message),
  );
  assert.ok(Date.now() - started < 15_000, "fails before anything is placed");
});
