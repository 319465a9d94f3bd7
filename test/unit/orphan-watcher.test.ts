/**
 * The orphan watcher's shell (actors/job/orphan-watcher.ts) on in-memory stores and virtual time:
 * it reads the real job-state records and coordinator leases, adopts a running orphan once, never a
 * finished job, skips and counts malformed records, and stops scanning when stopped.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { VirtualScheduler } from "../../runtime/clock.js";
import { openLeaseBucket } from "../../runtime/cluster/lease.js";
import { encodeLease } from "../../runtime/cluster/held-lease.js";
import type { MembershipView, NodeInfo } from "../../runtime/cluster/types.js";
import { silentLogger } from "../../runtime/log.js";
import { Metrics } from "../../runtime/metrics.js";
import { MemoryStores } from "../../runtime/store/index.js";
import { encodeJob } from "../../actors/coordinator/codec.js";
import { COORDINATOR_LEASE_MS } from "../../actors/coordinator/host.js";
import { freshJob } from "../../actors/coordinator/placement.js";
import { JOB_STATE_BUCKET, jobNames } from "../../actors/job/names.js";
import {
  ADOPTED_METRIC,
  MALFORMED_METRIC,
  OrphanWatcher,
  type OrphanWatcherHost,
} from "../../actors/job/orphan-watcher.js";
import type { JobSpec } from "../../actors/job/spec.js";
import { nodeInfo, testSpec } from "./coordinator-harness.js";

interface Rig {
  clock: VirtualScheduler;
  stores: MemoryStores;
  metrics: Metrics;
  spawned: Array<{ job: string; spec: JobSpec }>;
  nodes: NodeInfo[];
  local: Set<string>;
  host: OrphanWatcherHost;
  watcher: OrphanWatcher;
}

function rig(nodeId = "a"): Rig {
  const clock = new VirtualScheduler(0);
  const stores = new MemoryStores({ clock });
  const metrics = new Metrics();
  const spawned: Rig["spawned"] = [];
  const nodes = [nodeInfo(nodeId)];
  const local = new Set<string>();
  const membership: MembershipView = {
    epoch: 1,
    nodes: () => nodes,
    alive: () => nodes.filter((n) => n.state === "alive"),
    get: (id) => nodes.find((n) => n.node === id),
    subscribe: () => () => undefined,
    fence: () => undefined,
  };
  const host: OrphanWatcherHost = {
    nodeId,
    membership,
    stateKv: () => stores.kv(JOB_STATE_BUCKET),
    leaseKv: () => openLeaseBucket(stores, COORDINATOR_LEASE_MS),
    hasCoordinator: (job) => local.has(job),
    spawnCoordinator: (job, spec) => {
      spawned.push({ job, spec });
      local.add(job); // as the real host: the candidate now lives here
      return Promise.resolve();
    },
    metrics,
    log: silentLogger(),
  };
  const watcher = new OrphanWatcher(host, { scheduler: clock, scanEveryMs: 1_000 });
  return { clock, stores, metrics, spawned, nodes, local, host, watcher };
}

async function putJob(
  r: Rig,
  job: string,
  state: "running" | "finished" | "failed" = "running",
): Promise<JobSpec> {
  const spec = testSpec();
  const kv = await r.stores.kv(JOB_STATE_BUCKET);
  await kv.put(job, encodeJob({ ...freshJob(job, spec, 3, 0), state }));
  return spec;
}

test("a running job with a free lease is adopted once, after the grace, with its saved spec", async () => {
  const r = rig();
  const spec = await putJob(r, "j1");
  r.watcher.start();
  await r.clock.runFor(4_000, 100);
  assert.equal(r.spawned.length, 0, "not within the grace");
  await r.clock.runFor(4_000, 100);
  assert.deepEqual(r.spawned, [{ job: "j1", spec }]);
  await r.clock.runFor(30_000, 500);
  assert.equal(r.spawned.length, 1, "a candidate here: not adopted again");
  assert.equal(r.metrics.total(ADOPTED_METRIC), 1);
  r.watcher.stop();
});

test("a finished or failed job is never adopted", async () => {
  const r = rig();
  await putJob(r, "done", "finished");
  await putJob(r, "bad", "failed");
  r.watcher.start();
  await r.clock.runFor(120_000, 1_000);
  assert.deepEqual(r.spawned, []);
  r.watcher.stop();
});

test("a job whose lease a live holder renews is left alone; once that holder dies it is adopted", async () => {
  const r = rig("c");
  r.nodes.push(nodeInfo("b", "7"));
  await putJob(r, "j1");
  const leases = await openLeaseBucket(r.stores, COORDINATOR_LEASE_MS);
  const renew = r.clock.every(
    1_000,
    () => void leases.put(jobNames.leaseKey("j1"), encodeLease("b:7", r.clock.now())),
  );
  await leases.put(jobNames.leaseKey("j1"), encodeLease("b:7", 0));
  r.watcher.start();
  await r.clock.runFor(30_000, 250);
  assert.equal(r.spawned.length, 0, "the live holder's job is left alone");
  renew.cancel(); // b's node dies: the view says so, and its lease key lingers until the TTL
  r.nodes[1] = { ...nodeInfo("b", "7"), state: "dead" };
  await r.clock.runFor(10_000, 250);
  assert.deepEqual(
    r.spawned.map((s) => s.job),
    ["j1"],
  );
  r.watcher.stop();
});

test("malformed keys and records are skipped and counted; the other jobs are still adopted", async () => {
  const r = rig();
  const kv = await r.stores.kv(JOB_STATE_BUCKET);
  await kv.put("junk", new Uint8Array([0xc1, 0xff, 0x00]));
  await kv.put("wrong-shape", encodeJob({ ...freshJob("other-id", testSpec(), 1, 0) }));
  await kv.put("bad.key", new Uint8Array([1]));
  await putJob(r, "j2");
  r.watcher.start();
  await r.clock.runFor(8_000, 100);
  assert.deepEqual(
    r.spawned.map((s) => s.job),
    ["j2"],
  );
  assert.ok(r.metrics.get(MALFORMED_METRIC, { what: "record" }) >= 2, "junk and a record of another job");
  assert.ok(r.metrics.get(MALFORMED_METRIC, { what: "key" }) >= 1, "a key that is no job id");
  r.watcher.stop();
});

test("stopped, it scans no more", async () => {
  const r = rig();
  r.watcher.start();
  await r.clock.runFor(2_000, 100);
  r.watcher.stop();
  await putJob(r, "j1");
  await r.clock.runFor(20_000, 500);
  assert.deepEqual(r.spawned, []);
  assert.equal(r.clock.pending, 0, "no timer left behind");
});

test("failed scans back off, doubling up to the cap; the first good scan resets the pace", async () => {
  const r = rig();
  let reads = 0;
  let down = true;
  const real = await r.stores.kv(JOB_STATE_BUCKET);
  const host: OrphanWatcherHost = { ...r.host };
  host.stateKv = () => {
    reads++;
    return down ? Promise.reject(new Error("store down")) : Promise.resolve(real);
  };
  const w = new OrphanWatcher(host, { scheduler: r.clock, scanEveryMs: 1_000, maxBackoffMs: 8_000 });
  w.start();
  // Failing scans at 0, then pauses of 1, 2, 4, 8, 8 s: at 0, 1, 3, 7, 15, 23 s.
  await r.clock.runFor(24_000, 100);
  assert.equal(reads, 6, "one scan per backoff step, not one per second");
  down = false;
  await r.clock.runFor(8_000, 100);
  const resumed = reads;
  await r.clock.runFor(5_000, 100);
  assert.equal(reads - resumed, 5, "after a good scan, one per interval again");
  w.stop();
});
