/**
 * Who may end a job for its submitter (actors/api.ts `speaksForJob`): the node holding the job's
 * coordinator lease, or — once the lease is released — anyone, if the job's record says it ended.
 * On the in-memory stores; no network.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { speaksForJob } from "../../actors/api.js";
import { COORDINATOR_LEASE_MS } from "../../actors/coordinator/host.js";
import { jobNames } from "../../actors/job/names.js";
import { openJobsBucket, putJobRecord } from "../../runtime/cluster/jobs.js";
import { acquireLease, openLeaseBucket } from "../../runtime/cluster/lease.js";
import { MemoryStores } from "../../runtime/store/index.js";

const record = (state: string) => ({ id: "j1", state, step: 10, epoch: 3, members: ["a"], updatedAt: 1 });

test("an end from the lease holder's node is believed; from another node, or no node, it is not", async () => {
  const stores = new MemoryStores();
  const leases = await openLeaseBucket(stores, COORDINATOR_LEASE_MS);
  const lease = await acquireLease(leases, jobNames.leaseKey("j1"), "a:inc1", {
    ttlMs: COORDINATOR_LEASE_MS,
  });
  assert.ok(lease);
  try {
    assert.equal(await speaksForJob(stores, "j1", "a", 3, 1), true);
    assert.equal(await speaksForJob(stores, "j1", "b", 3, 1), false);
    assert.equal(await speaksForJob(stores, "j1", undefined, 3, 1), false);
    await putJobRecord(await openJobsBucket(stores), record("finished"));
    assert.equal(
      await speaksForJob(stores, "j1", "b", 3, 1),
      false,
      "while the lease is held, only its holder",
    );
  } finally {
    await lease.release();
  }
});

test("once the lease is released, the job's record decides: ended is believed, running is not", async () => {
  const stores = new MemoryStores();
  const jobs = await openJobsBucket(stores);
  assert.equal(await speaksForJob(stores, "j1", "b", 3, 1), false, "no lease, no record");
  await putJobRecord(jobs, record("running"));
  assert.equal(await speaksForJob(stores, "j1", "b", 3, 1), false, "no lease, a running job");
  for (const state of ["finished", "failed"]) {
    await putJobRecord(jobs, record(state));
    assert.equal(await speaksForJob(stores, "j1", "b", 3, 1), true, state);
  }
});

test("a record written while the end is being checked is seen on a later read", async () => {
  const stores = new MemoryStores();
  const jobs = await openJobsBucket(stores);
  await putJobRecord(jobs, record("running"));
  const pending = speaksForJob(stores, "j1", "a", 50, 2);
  setTimeout(() => void putJobRecord(jobs, record("finished")), 20);
  assert.equal(await pending, true);
});
