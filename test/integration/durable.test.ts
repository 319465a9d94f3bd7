/**
 * Jobs outlive every process: on a real nats-server (JetStream on disk), three daemons train MNIST;
 * every daemon is SIGKILLed at once mid-epoch and restarted 5 s later (and, in the second test, the
 * NATS server is killed and restarted with its store while the daemons are down). The `flock
 * train` client that started the job keeps running and prints the completed result: every epoch
 * counts each sample once, replicas agree, accuracy holds, and at most `checkpointEvery` committed
 * steps were lost (the rollback to the last complete checkpoint).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "nats";
import { decodeJob } from "../../actors/coordinator/codec.js";
import type { PersistedJob } from "../../actors/coordinator/state.js";
import type { TrainResult } from "../../actors/api.js";
import { JOB_STATE_BUCKET } from "../../actors/job/names.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import { startNatsServer, type NatsServerHandle } from "../../tools/natsd/index.js";
import { scaleTimeout, waitFor, type ChildHandle } from "../helpers/index.js";
import { startDaemon, startTrain } from "./cluster-kit.js";

const MNIST_TRAIN = 8000;
const CHECKPOINT_EVERY = 10;
const IDS = ["a", "b", "c"];
let server: NatsServerHandle;
let nc: NatsConnection;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "flock-durable-"));
  server = await startNatsServer({
    jetstream: true,
    storeDir: join(dir, "store"),
    readyTimeoutMs: scaleTimeout(10_000),
  });
  nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  // Two epochs of the mnist example (≥ 0.90 accuracy), a checkpoint every 10 steps.
  writeFileSync(
    join(dir, "job.json"),
    JSON.stringify({
      name: "mnist-durable",
      model: "mnist-mlp",
      dataset: "mnist",
      epochs: 2,
      globalBatch: 64,
      optimizer: { name: "adam", lr: 0.002 },
      minWorkers: 1,
      maxWorkers: 3,
      evalEvery: 25,
      checkpointEvery: CHECKPOINT_EVERY,
      seed: 11,
    }),
  );
});
after(async () => {
  await nc?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `flock daemon`; stopped (SIGTERM, then SIGKILL) after the test whatever happens. */
async function daemon(t: TestContext, id: string, cluster: string): Promise<ChildHandle> {
  return (await startDaemon(t, [server.url], cluster, id, ["--log-level", "warn"])).proc;
}

/** Starts `flock train job.json --json` and returns it with its job id. */
function train(t: TestContext, cluster: string): Promise<{ proc: ChildHandle; job: string }> {
  return startTrain(t, server.url, cluster, join(dir, "job.json"));
}

function stateReader(cluster: string, job: string): () => Promise<PersistedJob | undefined> {
  const stores = new JetStreamStores(nc, { cluster, timeoutMs: 2000 });
  return async () => {
    const entry = await (await stores.kv(JOB_STATE_BUCKET)).get(job);
    return entry && decodeJob(entry.value);
  };
}

/** The last line of the client's stdout, parsed; fails with the outputs when it did not end in time. */
async function resultOf(proc: ChildHandle, limitMs: number, logs: () => string): Promise<TrainResult> {
  // Unref'd: a pending timer kept the test process alive for minutes after the job ended.
  const exit = await Promise.race([proc.exited, sleep(limitMs, "timeout" as const, { ref: false })]);
  if (exit === "timeout")
    assert.fail(`flock train did not finish within ${limitMs} ms\n${proc.output()}\n${logs()}`);
  const last = proc.stdout().trim().split("\n").pop() ?? "";
  return JSON.parse(last) as TrainResult;
}

/** Runs the scenario: train, kill every daemon mid-epoch (and `duringOutage`), restart them 5 s later. */
async function killEverything(
  t: TestContext,
  cluster: string,
  duringOutage: () => Promise<void>,
): Promise<void> {
  const first = new Map<string, ChildHandle>();
  for (const id of IDS) first.set(id, await daemon(t, id, cluster));
  const { proc, job } = await train(t, cluster);
  const read = stateReader(cluster, job);
  // Mid-epoch 0, past a complete checkpoint, and not on a checkpoint boundary.
  const before = await waitFor(
    "the job past its first complete checkpoint, mid-epoch",
    async () => {
      const saved = await read().catch(() => undefined);
      const ok =
        saved?.state === "running" && saved.checkpointStep !== null && saved.step % CHECKPOINT_EVERY >= 3;
      return ok && saved.epoch < 2 && saved;
    },
    { timeoutMs: scaleTimeout(120_000), intervalMs: 100 },
  );
  for (const d of first.values()) d.kill("SIGKILL");
  await Promise.all([...first.values()].map((d) => d.exited));
  await duringOutage();
  await sleep(5000);
  const restarted = new Map<string, ChildHandle>();
  for (const id of IDS) restarted.set(id, await daemon(t, id, cluster));
  const logs = (): string =>
    [...restarted.entries()]
      .map(([id, d]) => `--- ${id}\n${d.output().split("\n").slice(-40).join("\n")}`)
      .join("\n");

  const result = await resultOf(proc, scaleTimeout(240_000), logs);
  assert.equal(result.status, "completed", JSON.stringify(result));
  assert.deepEqual(
    result.samplesPerEpoch,
    [MNIST_TRAIN, MNIST_TRAIN],
    "every sample counted once in every epoch",
  );
  assert.equal(result.ledgerAudit.exact, true, JSON.stringify(result.ledgerAudit));
  assert.equal(result.replicasConsistent, true, JSON.stringify(result.hashMismatches));
  assert.ok(result.accuracy >= 0.9, `accuracy ${result.accuracy}`);
  assert.ok(result.stepsLost !== undefined && result.stepsLost >= 1, `stepsLost ${result.stepsLost}`);
  assert.ok(result.stepsLost <= CHECKPOINT_EVERY, `stepsLost ${result.stepsLost} ≤ ${CHECKPOINT_EVERY}`);
  assert.ok(
    result.membership.some(
      (m) => m.kind === "failover" && /restored from the checkpoint/.test(m.detail ?? ""),
    ),
    JSON.stringify(result.membership),
  );
  assert.ok(result.steps > before.step - CHECKPOINT_EVERY, `steps ${result.steps}`);
}

test(
  "every daemon SIGKILLed at once mid-epoch and restarted 5 s later: the client prints the completed result",
  { timeout: scaleTimeout(480_000) },
  async (t) => {
    await killEverything(t, "dur1", async () => undefined);
  },
);

test(
  "the same with the NATS server killed and restarted with its store while the daemons are down",
  { timeout: scaleTimeout(480_000) },
  async (t) => {
    await killEverything(t, "dur2", async () => {
      server.kill("SIGKILL");
      await sleep(1000);
      await server.restart();
    });
  },
);
