/**
 * Orphaned jobs on a real nats-server with daemons as child processes: when the nodes of a job's
 * coordinator and of its standby are SIGKILLed together, nobody campaigns for the job's lease any
 * more; the third daemon's orphan watcher adopts it, the normal takeover path recovers from the
 * parameters its trainer holds, and the `flock train` client prints the completed result. (Every
 * daemon restarting — adoption, then a restore from the checkpoint — is durable.test.ts.)
 */
import assert from "node:assert/strict";
import { after, before, test, type TestContext } from "node:test";
import { connect, type NatsConnection } from "nats";
import { decodeJob } from "../../actors/coordinator/codec.js";
import { COORDINATOR_LEASE_MS } from "../../actors/coordinator/host.js";
import { JOB_STATE_BUCKET, jobNames } from "../../actors/job/names.js";
import type { PersistedJob } from "../../actors/coordinator/state.js";
import type { TrainResult } from "../../actors/api.js";
import { openLeaseBucket, readLease } from "../../runtime/cluster/lease.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import { readClusterStatus } from "../../tools/cli/index.js";
import { startNatsServer, type NatsServerHandle } from "../../tools/natsd/index.js";
import { scaleTimeout, waitFor, type ChildHandle } from "../helpers/index.js";
import { startDaemon, startTrain } from "./cluster-kit.js";

const MNIST_TRAIN = 8000;
let server: NatsServerHandle;
let nc: NatsConnection;

before(async () => {
  server = await startNatsServer({ jetstream: true, readyTimeoutMs: scaleTimeout(10_000) });
  nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
});
after(async () => {
  await nc?.close();
  await server?.stop();
});

/** Starts `flock daemon`; stopped (SIGTERM, then SIGKILL) after the test whatever happens. */
async function daemon(t: TestContext, id: string, cluster: string): Promise<ChildHandle> {
  return (await startDaemon(t, [server.url], cluster, id, ["--log-level", "warn"])).proc;
}

/** Starts `flock train mnist --json` on the cluster and returns it with its job id. */
function train(t: TestContext, cluster: string): Promise<{ proc: ChildHandle; job: string }> {
  const workers = ["--min-workers", "1", "--max-workers", "3"];
  return startTrain(t, server.url, cluster, "mnist", [...workers, "--epochs", "1", "--seed", "7"]);
}

/** Reads a job's state record and its coordinator lease holder. */
function jobReader(cluster: string, job: string): () => Promise<{ saved?: PersistedJob; holder?: string }> {
  const stores = new JetStreamStores(nc, { cluster, timeoutMs: 2000 });
  return async () => {
    const entry = await (await stores.kv(JOB_STATE_BUCKET)).get(job);
    const lease = await readLease(
      await openLeaseBucket(stores, COORDINATOR_LEASE_MS),
      jobNames.leaseKey(job),
    );
    return { saved: entry && decodeJob(entry.value), holder: lease?.holder };
  };
}

/** Nodes whose heartbeats report a coordinator actor of `job`. */
async function coordinatorNodes(cluster: string, job: string): Promise<string[]> {
  const status = await readClusterStatus(new JetStreamStores(nc, { cluster, timeoutMs: 2000 }), cluster);
  return status.nodes
    .filter((n) => n.state === "alive" && (n.actors[jobNames.coordinator(job)] ?? 0) > 0)
    .map((n) => n.id)
    .sort();
}

/** The last line of the client's stdout, parsed; fails with the outputs when it did not end in time. */
async function resultOf(proc: ChildHandle, limitMs: number, logs: () => string): Promise<TrainResult> {
  const exit = await Promise.race([
    proc.exited,
    new Promise<"timeout">((r) => setTimeout(() => r("timeout"), limitMs).unref()),
  ]);
  if (exit === "timeout")
    assert.fail(`flock train did not finish within ${limitMs} ms\n${proc.output()}\n${logs()}`);
  const last = proc.stdout().trim().split("\n").pop() ?? "";
  return JSON.parse(last) as TrainResult;
}

test(
  "the coordinator's and the standby's nodes SIGKILLed together: the third daemon adopts the job and it completes",
  { timeout: scaleTimeout(300_000) },
  async (t) => {
    const cluster = "orph1";
    const daemons = new Map<string, ChildHandle>();
    for (const id of ["a", "b", "c"]) daemons.set(id, await daemon(t, id, cluster));
    const { proc, job } = await train(t, cluster);
    const read = jobReader(cluster, job);
    // Mid-job, with a trainer on every node, so that the survivor holds the parameters.
    const holder = await waitFor(
      "the job running on three members, its lease held",
      async () => {
        const { saved, holder } = await read();
        return saved?.state === "running" && saved.members.length === 3 && saved.step >= 15 && holder;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    const holderNode = holder.slice(0, holder.lastIndexOf(":"));
    const hosts = await waitFor(
      "the active coordinator and its standby in place",
      async () => {
        const ns = await coordinatorNodes(cluster, job);
        return ns.length === 2 && ns.includes(holderNode) && ns;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    const survivor = ["a", "b", "c"].find((n) => !hosts.includes(n))!;
    for (const n of hosts) daemons.get(n)!.kill("SIGKILL");
    const killedAtStep = (await read()).saved?.step ?? 0;
    const logs = (): string => daemons.get(survivor)!.output().split("\n").slice(-60).join("\n");

    const result = await resultOf(proc, scaleTimeout(180_000), logs);
    assert.equal(result.status, "completed", JSON.stringify(result));
    assert.deepEqual(result.samplesPerEpoch, [MNIST_TRAIN], "every sample counted once in the epoch");
    assert.equal(result.replicasConsistent, true, JSON.stringify(result.hashMismatches));
    assert.ok(result.steps > killedAtStep, `steps ${result.steps} after the kill at ${killedAtStep}`);
    assert.ok(
      daemons.get(survivor)!.output().includes("adopted an orphaned job"),
      `the survivor ${survivor} adopted the job\n${logs()}`,
    );
    const failovers = result.membership.filter((m) => m.kind === "failover").map((m) => m.node);
    assert.deepEqual(failovers, [survivor], JSON.stringify(result.membership));
  },
);
