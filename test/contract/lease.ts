/**
 * Lease semantics, for every store: exclusive acquisition, renewal, loss on a moved revision or an
 * unconfirmable renewal, TTL expiry on the store's side, release, standby candidates and takeover
 * from a dead holder. Run on the memory store on virtual time (unit) and on JetStream on real time
 * (integration): the same scenarios, only the clock differs.
 * @module
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  LeaseCandidate,
  acquireLease,
  openLeaseBucket,
  readLease,
  takeOverLease,
  type LeaseCandidateOptions,
} from "../../runtime/cluster/lease.js";
import type { KvStore, StoreProvider } from "../../runtime/store/index.js";
import type { TestTime } from "../helpers/time.js";

/** A KV wrapper whose calls can be made to hang or fail, as during a partition. */
export function faulty(kv: KvStore): { kv: KvStore; mode: "ok" | "hang" | "fail" } {
  let mode: "ok" | "hang" | "fail" = "ok";
  const gate = <T>(f: () => Promise<T>): Promise<T> =>
    mode === "ok"
      ? f()
      : mode === "hang"
        ? new Promise<T>(() => undefined)
        : Promise.reject(new Error("partitioned"));
  const wrapped: KvStore = {
    bucket: kv.bucket,
    ttlMs: kv.ttlMs,
    get: (k) => gate(() => kv.get(k)),
    create: (k, v) => gate(() => kv.create(k, v)),
    update: (k, v, r) => gate(() => kv.update(k, v, r)),
    put: (k, v) => gate(() => kv.put(k, v)),
    delete: (k, r) => gate(() => kv.delete(k, r)),
    keys: (p) => gate(() => kv.keys(p)),
  };
  return {
    kv: wrapped,
    get mode() {
      return mode;
    },
    set mode(m) {
      mode = m;
    },
  };
}

/** One test's world: stores and the time they and the leases run on. */
export interface LeaseWorld {
  stores: StoreProvider;
  time: TestTime;
}

let n = 0;
const key = (): string => `lease-${process.pid}-${++n}`;
const intruder = (): Uint8Array => new TextEncoder().encode(JSON.stringify({ holder: "intruder" }));

/** The lease scenarios on the stores `world()` gives (called once per test), with leases of `ttlMs`. */
export function leaseContract(name: string, world: () => LeaseWorld, ttlMs: number): void {
  describe(`leases on ${name}`, () => {
    test("one holder at a time; renewals keep it past the TTL; release frees it at once", async (t) => {
      const { stores, time } = world();
      const o = { ttlMs, scheduler: time.scheduler };
      const kv = await openLeaseBucket(stores, ttlMs);
      const k = key();
      const a = await acquireLease(kv, k, "a", o);
      t.after(() => a?.release());
      assert.ok(a?.held);
      assert.equal(await acquireLease(kv, k, "b", o), undefined);
      const first = a.revision;
      await time.pass(ttlMs * 2);
      assert.ok(a.held, "renewed, so still held after two TTLs");
      assert.ok(a.revision > first, "each renewal moves the revision");
      assert.equal(await acquireLease(kv, k, "b", o), undefined);
      assert.deepEqual((await readLease(kv, k))?.holder, "a");
      const lost: string[] = [];
      a.onLost((r) => lost.push(r));
      await a.release();
      assert.equal(a.held, false);
      const b = await acquireLease(kv, k, "b", o);
      t.after(() => b?.release());
      assert.ok(b?.held, "released: the next one gets it without waiting");
      assert.deepEqual(lost, [], "release is not a loss");
    });

    test("a renewal that finds the revision moved loses the lease, once", async (t) => {
      const { stores, time } = world();
      const kv = await openLeaseBucket(stores, ttlMs);
      const k = key();
      const a = (await acquireLease(kv, k, "a", { ttlMs, scheduler: time.scheduler }))!;
      t.after(() => a.release());
      const reasons: string[] = [];
      a.onLost((r) => reasons.push(r));
      await kv.put(k, intruder());
      await time.until("the lease to be lost", () => reasons.length > 0, ttlMs * 2);
      assert.equal(a.held, false);
      await time.pass(ttlMs / 2);
      assert.equal(reasons.length, 1, "onLost fires once");
      assert.match(reasons[0]!, /moved on/);
    });

    test("a renewal that landed with its answer lost keeps the lease", async (t) => {
      const { stores, time } = world();
      const real = await openLeaseBucket(stores, ttlMs);
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
      const a = (await acquireLease(lossy, k, "a", { ttlMs, scheduler: time.scheduler }))!;
      t.after(() => a.release());
      const reasons: string[] = [];
      a.onLost((r) => reasons.push(r));
      const before = a.revision;
      lose = 2;
      await time.until("two lost answers", () => lose === 0, ttlMs * 2);
      await time.pass(ttlMs * 2);
      assert.deepEqual(reasons, [], "not lost");
      assert.ok(a.held);
      assert.ok(a.revision > before + 2, "renewing again from the landed revision");
      assert.equal((await readLease(real, k))?.holder, "a");
      // A write by someone else is still a loss.
      await real.put(k, intruder());
      await time.until("the lease to be lost", () => reasons.length > 0, ttlMs * 2);
      assert.match(reasons[0]!, /moved on/);
    });

    test("a renewal that cannot be confirmed within the TTL loses the lease; the store frees it", async (t) => {
      const { stores, time } = world();
      const o = { ttlMs, scheduler: time.scheduler };
      const real = await openLeaseBucket(stores, ttlMs);
      const f = faulty(real);
      const k = key();
      const a = (await acquireLease(f.kv, k, "a", o))!;
      t.after(() => a.release());
      let lostAt = 0;
      a.onLost(() => (lostAt = time.scheduler.now()));
      const cutAt = time.scheduler.now();
      f.mode = "hang";
      await time.until("the unconfirmed lease to be lost", () => lostAt > 0, ttlMs * 3);
      assert.ok(
        lostAt - cutAt <= ttlMs + 200,
        `lost ${Math.round(lostAt - cutAt)} ms after the cut (ttl ${ttlMs})`,
      );
      // The holder gave up no later than the store can expire the key: the next one gets it only after.
      const b = await time.until("b to acquire after expiry", () => acquireLease(real, k, "b", o), ttlMs * 4);
      t.after(() => b.release());
      assert.ok(time.scheduler.now() >= lostAt, "the old holder had stopped before the new one started");
      assert.equal(a.held, false);
    });

    test("takeOverLease needs the current revision", async (t) => {
      const { stores, time } = world();
      const o = { ttlMs, scheduler: time.scheduler };
      const kv = await openLeaseBucket(stores, ttlMs);
      const k = key();
      const a = (await acquireLease(kv, k, "a", o))!;
      t.after(() => a.release());
      const rec = (await readLease(kv, k))!;
      await time.pass(ttlMs / 2); // a renews meanwhile
      assert.equal(
        await takeOverLease(kv, k, "b", rec.revision, o),
        undefined,
        "a stale revision cannot take over",
      );
      const fresh = (await readLease(kv, k))!;
      const b = (await takeOverLease(kv, k, "b", fresh.revision, o))!;
      t.after(() => b.release());
      assert.ok(b.held);
      await time.until("a to notice", () => !a.held, ttlMs * 2);
    });

    test("candidates: exactly one holds; the standby takes over after release and after a partition", async (t) => {
      const { stores, time } = world();
      const o: LeaseCandidateOptions = { ttlMs, scheduler: time.scheduler };
      const real = await openLeaseBucket(stores, ttlMs);
      const fa = faulty(real);
      const k = key();
      const a = new LeaseCandidate(fa.kv, k, "a", o);
      t.after(() => a.stop());
      await time.until("a to hold", () => a.held, ttlMs * 2);
      const b = new LeaseCandidate(real, k, "b", o);
      t.after(() => b.stop());
      const acquiredByB: number[] = [];
      b.onAcquired(() => acquiredByB.push(time.scheduler.now()));
      await time.pass(ttlMs);
      assert.ok(a.held && !b.held, "exactly one holds");
      fa.mode = "fail";
      await time.until("b to take over after a's lease expired", () => b.held, ttlMs * 4);
      assert.equal(a.held, false);
      fa.mode = "ok";
      await time.pass(ttlMs);
      assert.ok(b.held && !a.held, "a came back as a standby");
      await b.stop();
      await time.until("a to hold again after b stopped", () => a.held, ttlMs * 2);
      assert.equal(acquiredByB.length, 1);
    });

    test("a candidate takes over from a holder known to be dead once it stops renewing, before the TTL", async (t) => {
      const { stores, time } = world();
      const long = ttlMs * 10;
      const real = await openLeaseBucket(stores, long);
      const fa = faulty(real);
      const k = key();
      const a = (await acquireLease(fa.kv, k, "node-a@1", { ttlMs: long, scheduler: time.scheduler }))!;
      t.after(() => a.release());
      fa.mode = "fail"; // a stops renewing (crashed); its key would live for 10 TTLs
      const started = time.scheduler.now();
      const b = new LeaseCandidate(real, k, "node-b@1", {
        ttlMs: long,
        scheduler: time.scheduler,
        retryEveryMs: 50,
        isHolderDead: (h) => h === "node-a@1",
      });
      t.after(() => b.stop());
      await time.until("b to take over", () => b.held, long);
      const took = time.scheduler.now() - started;
      assert.ok(took < long * 0.8, `without waiting for the TTL (took ${took} ms)`);
      // 1.5 renew intervals (long / 3) of a standing revision: a live holder would have renewed.
      assert.ok(took >= long / 2 - 1, `not before the revision stood still (took ${took} ms)`);
    });

    test("a holder that keeps renewing is never taken over, though the view calls it dead", async (t) => {
      const { stores, time } = world();
      const o = { ttlMs, scheduler: time.scheduler };
      const kv = await openLeaseBucket(stores, ttlMs);
      const k = key();
      const a = new LeaseCandidate(kv, k, "node-a@1", { ...o, isHolderDead: () => true });
      t.after(() => a.stop());
      await time.until("a to hold", () => a.held, ttlMs * 2);
      const b = new LeaseCandidate(kv, k, "node-b@1", {
        ...o,
        retryEveryMs: ttlMs / 20,
        isHolderDead: () => true,
      });
      t.after(() => b.stop());
      const lostByA: string[] = [];
      a.onLost((r) => lostByA.push(r));
      await time.pass(ttlMs * 3);
      assert.ok(a.held && !b.held, "the renewing holder keeps its lease");
      assert.deepEqual(lostByA, []);
      await a.stop();
      await time.until("b to hold once a released", () => b.held, ttlMs * 2);
    });

    test("a lease ttl must match its bucket's", async () => {
      const { stores, time } = world();
      const kv = await openLeaseBucket(stores, ttlMs);
      await assert.rejects(
        acquireLease(kv, key(), "a", { ttlMs: ttlMs + 1, scheduler: time.scheduler }),
        RangeError,
      );
    });
  });
}
