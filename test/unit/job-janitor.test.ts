/**
 * Retention of ended jobs (actors/job/janitor.ts): the pure rule, and the janitor on in-memory
 * stores and virtual time deleting an expired job's checkpoints, state record, job line and lease
 * key — and nothing of a running job or of one still within the retention period.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { VirtualScheduler } from "../../runtime/clock.js";
import { openJobsBucket, putJobRecord } from "../../runtime/cluster/jobs.js";
import { openLeaseBucket } from "../../runtime/cluster/lease.js";
import { silentLogger } from "../../runtime/log.js";
import { Metrics } from "../../runtime/metrics.js";
import { MemoryStores } from "../../runtime/store/index.js";
import { encodeJob } from "../../actors/coordinator/codec.js";
import { COORDINATOR_LEASE_MS } from "../../actors/coordinator/host.js";
import { freshJob } from "../../actors/coordinator/placement.js";
import type { PersistedJob } from "../../actors/coordinator/state.js";
import { endedAt, expiredJobs, EXPIRED_METRIC, JobJanitor } from "../../actors/job/janitor.js";
import { CHECKPOINTS_BUCKET, JOB_STATE_BUCKET, jobNames } from "../../actors/job/names.js";
import { adopters } from "../../actors/job/orphans.js";
import { testSpec } from "./coordinator-harness.js";

const DAY = 24 * 3600 * 1000;

test("expiredJobs: past the retention, and only on the first node of the job's ranking", () => {
  const nodes = ["a", "b", "c"];
  const jobs = ["j1", "j2", "j3", "j4", "j5", "j6"].map((job) => ({ job, endedAt: 0 }));
  const owners = new Map(jobs.map((j) => [j.job, adopters(j.job, nodes, 1)[0]]));
  const all = nodes.flatMap((n) => expiredJobs(jobs, n, nodes, DAY, DAY));
  assert.deepEqual(
    [...all].sort(),
    jobs.map((j) => j.job),
    "each job deleted by exactly one node",
  );
  for (const n of nodes)
    assert.deepEqual(
      expiredJobs(jobs, n, nodes, DAY, DAY),
      jobs.filter((j) => owners.get(j.job) === n).map((j) => j.job),
    );
  assert.deepEqual(expiredJobs(jobs, "a", nodes, DAY - 1, DAY), [], "not before the retention ends");
  assert.deepEqual(expiredJobs(jobs, "a", [], DAY, DAY).length, jobs.length, "alone, a node owns every job");
});

test("endedAt: the record's, else start + wall time of the result, else the start; none while running", () => {
  const p = freshJob("j", testSpec(), 1, 1000);
  assert.equal(endedAt(p), undefined);
  assert.equal(endedAt({ ...p, state: "failed" }), 1000);
  assert.equal(endedAt({ ...p, state: "failed", endedAt: 5000 }), 5000);
  const result = { wallSeconds: 3 } as PersistedJob["result"];
  assert.equal(endedAt({ ...p, state: "finished", result }), 4000);
});

test("the janitor deletes an expired job's checkpoints, records and lease key, and keeps the others", async () => {
  const clock = new VirtualScheduler(0);
  const stores = new MemoryStores({ clock });
  const metrics = new Metrics();
  const state = await stores.kv(JOB_STATE_BUCKET);
  const blobs = await stores.blobs(CHECKPOINTS_BUCKET);
  const jobsKv = await openJobsBucket(stores);
  const leases = await openLeaseBucket(stores, COORDINATOR_LEASE_MS);
  const put = async (job: string, p: Partial<PersistedJob>) => {
    await state.put(job, encodeJob({ ...freshJob(job, testSpec(), 1, 0), ...p }));
    await blobs.put(jobNames.checkpointManifest(job, 5), new Uint8Array([1]));
    await blobs.put(jobNames.checkpoint(job, 5, 0), new Uint8Array([2]));
    await putJobRecord(jobsKv, { id: job, state: "done", step: 5, epoch: 1, members: [], updatedAt: 0 });
  };
  await put("old", { state: "finished", endedAt: 0 });
  await put("old1", { state: "failed", endedAt: 0 }); // "old" is a prefix of it: not deleted with it
  await put("recent", { state: "finished", endedAt: 2 * DAY });
  await put("live", { state: "running" });
  await leases.put(jobNames.leaseKey("old"), new Uint8Array([1]));
  const janitor = new JobJanitor(
    {
      nodeId: "a",
      aliveNodes: () => ["a"],
      stateKv: async () => state,
      jobsKv: async () => jobsKv,
      leaseKv: async () => leases,
      blobs: async () => blobs,
      metrics,
      log: silentLogger(),
    },
    { scheduler: clock, retentionMs: DAY, everyMs: 60_000 },
  );
  clock.advance(DAY + 1);
  assert.deepEqual((await janitor.passOnce()).sort(), ["old", "old1"]);
  for (const job of ["old", "old1"]) {
    assert.equal(await state.get(job), undefined, job);
    assert.equal(await jobsKv.get(job), undefined, job);
    assert.deepEqual(await blobs.list(jobNames.checkpointPrefix(job)), [], job);
  }
  assert.equal(await leases.get(jobNames.leaseKey("old")), undefined);
  for (const job of ["recent", "live"]) {
    assert.ok(await state.get(job), job);
    assert.equal((await blobs.list(jobNames.checkpointPrefix(job))).length, 2, job);
  }
  assert.equal(metrics.total(EXPIRED_METRIC), 2);
  // On its timer: "recent" goes once its retention has passed too; "live" never.
  janitor.start();
  await clock.runFor(2 * DAY, 60_000);
  janitor.stop();
  assert.equal(await state.get("recent"), undefined);
  assert.ok(await state.get("live"));
  assert.equal(metrics.total(EXPIRED_METRIC), 3);
});
