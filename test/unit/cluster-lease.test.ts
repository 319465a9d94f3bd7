/**
 * Leases on the in-memory store, on virtual time: the lease contract (test/contract/lease.ts) with
 * the store's TTL, the renewals and the candidates all on one VirtualScheduler, so nothing sleeps.
 * The same contract runs against JetStream in test/integration/cluster-lease-jetstream.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { acquireLease, openLeaseBucket } from "../../runtime/cluster/lease.js";
import { MemoryStores } from "../../runtime/store/index.js";
import { faulty, leaseContract } from "../contract/lease.js";
import { virtualTime } from "../helpers/time.js";

function world() {
  const time = virtualTime();
  return { time, stores: new MemoryStores({ clock: time.scheduler }) };
}

leaseContract("memory (virtual time)", world, 400);

test("a silent holder's key expires on the store's injected clock, to the millisecond", async () => {
  const { time, stores } = world();
  const o = { ttlMs: 400, scheduler: time.scheduler };
  const real = await openLeaseBucket(stores, 400);
  const partitioned = faulty(real);
  const a = await acquireLease(partitioned.kv, "k", "a", o);
  assert.ok(a);
  partitioned.mode = "hang"; // a's renewals never arrive: the key was last written at 0
  await time.pass(399);
  assert.equal(await acquireLease(real, "k", "b", o), undefined, "the key lives until its TTL");
  time.scheduler.advance(1);
  assert.equal(a.held, false, "the holder counts itself out no later than the store expires the key");
  const b = await acquireLease(real, "k", "b", o);
  assert.ok(b?.held, "expired at exactly the TTL, on virtual time");
  await b.release();
});
