/**
 * Lease semantics on both stores (memory, and JetStream on a real nats-server): exclusive
 * acquisition, renewal, loss on a moved revision or an unconfirmable renewal, TTL expiry on the
 * store's side, release, standby candidates and takeover from a dead holder.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  LeaseCandidate,
  acquireLease,
  openLeaseBucket,
  readLease,
  takeOverLease,
} from "../../runtime/cluster/lease.js";
import {
  JetStreamStores,
  MemoryStores,
  type KvStore,
  type StoreProvider,
} from "../../runtime/store/index.js";
import { sharedJetStream, waitFor } from "../helpers/index.js";

/** A KV wrapper whose calls can be made to hang or fail, as during a partition. */
function faulty(kv: KvStore): { kv: KvStore; mode: "ok" | "hang" | "fail" } {
  const ctl = { mode: "ok" as "ok" | "hang" | "fail", kv: undefined as unknown as KvStore };
  const gate = <T>(f: () => Promise<T>): Promise<T> =>
    ctl.mode === "ok"
      ? f()
      : ctl.mode === "hang"
        ? new Promise<T>(() => undefined)
        : Promise.reject(new Error("partitioned"));
  ctl.kv = {
    bucket: kv.bucket,
    ttlMs: kv.ttlMs,
    get: (k) => gate(() => kv.get(k)),
    create: (k, v) => gate(() => kv.create(k, v)),
    update: (k, v, r) => gate(() => kv.update(k, v, r)),
    put: (k, v) => gate(() => kv.put(k, v)),
    delete: (k, r) => gate(() => kv.delete(k, r)),
    keys: (p) => gate(() => kv.keys(p)),
  };
  return ctl;
}

let n = 0;
const key = (): string => `lease-${process.pid}-${++n}`;

function leaseContract(name: string, stores: () => StoreProvider, ttlMs: number): void {
  describe(`leases on ${name}`, () => {
    test("one holder at a time; renewals keep it past the TTL; release frees it at once", async (t) => {
      const kv = await openLeaseBucket(stores(), ttlMs);
      const k = key();
      const a = await acquireLease(kv, k, "a", { ttlMs });
      t.after(() => a?.release());
      assert.ok(a?.held);
      assert.equal(await acquireLease(kv, k, "b", { ttlMs }), undefined);
      const first = a.revision;
      await sleep(ttlMs * 2);
      assert.ok(a.held, "renewed, so still held after two TTLs");
      assert.ok(a.revision > first, "each renewal moves the revision");
      assert.equal(await acquireLease(kv, k, "b", { ttlMs }), undefined);
      assert.deepEqual((await readLease(kv, k))?.holder, "a");
      const lost: string[] = [];
      a.onLost((r) => lost.push(r));
      await a.release();
      assert.equal(a.held, false);
      const b = await acquireLease(kv, k, "b", { ttlMs });
      t.after(() => b?.release());
      assert.ok(b?.held, "released: the next one gets it without waiting");
      assert.deepEqual(lost, [], "release is not a loss");
    });

    test("a renewal that finds the revision moved loses the lease, once", async (t) => {
      const kv = await openLeaseBucket(stores(), ttlMs);
      const k = key();
      const a = (await acquireLease(kv, k, "a", { ttlMs }))!;
      t.after(() => a.release());
      const reasons: string[] = [];
      a.onLost((r) => reasons.push(r));
      await kv.put(k, new TextEncoder().encode(JSON.stringify({ holder: "intruder" })));
      await waitFor("the lease to be lost", () => reasons.length > 0, { timeoutMs: ttlMs * 2 });
      assert.equal(a.held, false);
      await sleep(ttlMs / 2);
      assert.equal(reasons.length, 1, "onLost fires once");
      assert.match(reasons[0]!, /moved on/);
    });

    test("a renewal that landed with its answer lost keeps the lease", async (t) => {
      const real = await openLeaseBucket(stores(), ttlMs);
      let lose = 0; // answers of this many updates are lost after they land
      const lossy: KvStore = {
        ...faulty(real).kv,
        update: async (k, v, r) => {
          const revision = await real.update(k, v, r);
          if (lose > 0) {
            lose--;
            throw new Error("TIMEOUT");
          }
          return revision;
        },
      };
      const k = key();
      const a = (await acquireLease(lossy, k, "a", { ttlMs }))!;
      t.after(() => a.release());
      const reasons: string[] = [];
      a.onLost((r) => reasons.push(r));
      const before = a.revision;
      lose = 2;
      await waitFor("two lost answers", () => lose === 0, { timeoutMs: ttlMs * 2 });
      await sleep(ttlMs * 2);
      assert.deepEqual(reasons, [], "not lost");
      assert.ok(a.held);
      assert.ok(a.revision > before + 2, "renewing again from the landed revision");
      assert.equal((await readLease(real, k))?.holder, "a");
      // A write by someone else is still a loss.
      await real.put(k, new TextEncoder().encode(JSON.stringify({ holder: "intruder" })));
      await waitFor("the lease to be lost", () => reasons.length > 0, { timeoutMs: ttlMs * 2 });
      assert.match(reasons[0]!, /moved on/);
    });

    test("a renewal that cannot be confirmed within the TTL loses the lease; the store frees it", async (t) => {
      const real = await openLeaseBucket(stores(), ttlMs);
      const f = faulty(real);
      const k = key();
      const a = (await acquireLease(f.kv, k, "a", { ttlMs }))!;
      t.after(() => a.release());
      let lostAt = 0;
      a.onLost(() => (lostAt = performance.now()));
      const cutAt = performance.now();
      f.mode = "hang";
      await waitFor("the unconfirmed lease to be lost", () => lostAt > 0, { timeoutMs: ttlMs * 3 });
      assert.ok(
        lostAt - cutAt <= ttlMs + 200,
        `lost ${Math.round(lostAt - cutAt)} ms after the cut (ttl ${ttlMs})`,
      );
      // The holder gave up no later than the store can expire the key: the next one gets it only after.
      const b = await waitFor("b to acquire after expiry", () => acquireLease(real, k, "b", { ttlMs }), {
        timeoutMs: ttlMs * 4,
        intervalMs: 50,
      });
      t.after(() => b.release());
      assert.ok(performance.now() >= lostAt, "the old holder had stopped before the new one started");
      assert.equal(a.held, false);
    });

    test("takeOverLease needs the current revision", async (t) => {
      const kv = await openLeaseBucket(stores(), ttlMs);
      const k = key();
      const a = (await acquireLease(kv, k, "a", { ttlMs }))!;
      t.after(() => a.release());
      const rec = (await readLease(kv, k))!;
      await sleep(ttlMs / 2); // a renews meanwhile
      assert.equal(
        await takeOverLease(kv, k, "b", rec.revision, { ttlMs }),
        undefined,
        "a stale revision cannot take over",
      );
      const fresh = (await readLease(kv, k))!;
      const b = (await takeOverLease(kv, k, "b", fresh.revision, { ttlMs }))!;
      t.after(() => b.release());
      assert.ok(b.held);
      await waitFor("a to notice", () => !a.held, { timeoutMs: ttlMs * 2 });
    });

    test("candidates: exactly one holds; the standby takes over after release and after a partition", async (t) => {
      const real = await openLeaseBucket(stores(), ttlMs);
      const fa = faulty(real);
      const k = key();
      const a = new LeaseCandidate(fa.kv, k, "a", { ttlMs });
      t.after(() => a.stop());
      await waitFor("a to hold", () => a.held, { timeoutMs: ttlMs * 2 });
      const b = new LeaseCandidate(real, k, "b", { ttlMs });
      t.after(() => b.stop());
      const acquiredByB: number[] = [];
      b.onAcquired(() => acquiredByB.push(performance.now()));
      await sleep(ttlMs);
      assert.ok(a.held && !b.held, "exactly one holds");
      fa.mode = "fail";
      await waitFor("b to take over after a's lease expired", () => b.held, { timeoutMs: ttlMs * 4 });
      assert.equal(a.held, false);
      fa.mode = "ok";
      await sleep(ttlMs);
      assert.ok(b.held && !a.held, "a came back as a standby");
      await b.stop();
      await waitFor("a to hold again after b stopped", () => a.held, { timeoutMs: ttlMs * 2 });
      assert.equal(acquiredByB.length, 1);
    });

    test("a candidate takes over at once from a holder known to be dead", async (t) => {
      const real = await openLeaseBucket(stores(), ttlMs * 10);
      const fa = faulty(real);
      const k = key();
      const a = (await acquireLease(fa.kv, k, "node-a@1", { ttlMs: ttlMs * 10 }))!;
      t.after(() => a.release());
      fa.mode = "fail"; // a stops renewing (crashed); its key would live for 10 TTLs
      const started = performance.now();
      const b = new LeaseCandidate(real, k, "node-b@1", {
        ttlMs: ttlMs * 10,
        retryEveryMs: 50,
        isHolderDead: (h) => h === "node-a@1",
      });
      t.after(() => b.stop());
      await waitFor("b to take over", () => b.held, { timeoutMs: ttlMs * 5 });
      assert.ok(performance.now() - started < ttlMs * 5, "without waiting for the TTL");
    });

    test("a lease ttl must match its bucket's", async () => {
      const kv = await openLeaseBucket(stores(), ttlMs);
      await assert.rejects(acquireLease(kv, key(), "a", { ttlMs: ttlMs + 1 }), RangeError);
    });
  });
}

leaseContract("memory", () => new MemoryStores(), 400);

const nc = sharedJetStream();
leaseContract("jetstream", () => new JetStreamStores(nc(), { cluster: "leasetest" }), 1000);
