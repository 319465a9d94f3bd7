/**
 * The store contract, for both providers: memory (with an injected clock, test/unit/store.test.ts)
 * and JetStream on a real nats-server (test/integration/store-jetstream.test.ts). Same calls, same
 * results, same errors.
 * @module
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  InvalidStoreNameError,
  KvConflictError,
  decodeKeyToken,
  encodeKeyToken,
  type StoreProvider,
} from "../../runtime/store/index.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined => (b ? new TextDecoder().decode(b) : undefined);

/** One test's stores and how to let their clock run. */
export interface Fixture {
  stores: StoreProvider;
  /** Lets `ms` of the store's clock pass (memory: a fake clock; JetStream: real time). */
  advance(ms: number): Promise<void>;
}

let unique = 0;
const bucket = (base: string): string => `${base}-${process.pid}-${++unique}`;

/** The store scenarios on the provider `fixture()` gives (called once per test). */
export function storeContract(name: string, fixture: () => Fixture): void {
  describe(`store contract: ${name}`, () => {
    test("create, get, update, put, delete with increasing revisions", async () => {
      const kv = await fixture().stores.kv(bucket("basic"));
      assert.equal(await kv.get("a"), undefined);
      const r1 = await kv.create("a", enc("one"));
      const e1 = await kv.get("a");
      assert.equal(dec(e1?.value), "one");
      assert.equal(e1?.revision, r1);
      assert.equal(e1?.key, "a");
      await assert.rejects(kv.create("a", enc("again")), KvConflictError);
      const r2 = await kv.update("a", enc("two"), r1);
      assert.ok(r2 > r1);
      await assert.rejects(kv.update("a", enc("stale"), r1), KvConflictError, "a stale revision loses");
      await assert.rejects(kv.update("missing", enc("x"), r2), KvConflictError, "update needs the key");
      const r3 = await kv.put("a", enc("three"));
      assert.ok(r3 > r2);
      const other = await kv.put("b", enc("b"));
      assert.ok(other > r3, "revisions increase across the bucket");
      await assert.rejects(kv.delete("a", r2), KvConflictError, "delete with a stale revision loses");
      assert.equal(dec((await kv.get("a"))?.value), "three");
      await kv.delete("a", r3);
      assert.equal(await kv.get("a"), undefined);
      const r4 = await kv.create("a", enc("reborn"));
      assert.ok(r4 > r3, "create succeeds after a delete");
      await kv.delete("a");
      await kv.delete("never-there");
      assert.deepEqual(await kv.keys(), ["b"]);
    });

    test("keys, with and without a prefix", async () => {
      const kv = await fixture().stores.kv(bucket("keys"));
      assert.deepEqual(await kv.keys(), []);
      for (const k of ["a.b.c", "a.b.d", "a.x", "ab", "b", "node.n=3A1"]) await kv.put(k, enc(k));
      await kv.delete("a.x");
      assert.deepEqual(await kv.keys(), ["a.b.c", "a.b.d", "ab", "b", "node.n=3A1"]);
      assert.deepEqual(await kv.keys("a.b."), ["a.b.c", "a.b.d"]);
      assert.deepEqual(await kv.keys("a"), ["a.b.c", "a.b.d", "ab"]);
      assert.deepEqual(await kv.keys("node."), ["node.n=3A1"]);
      assert.deepEqual(await kv.keys("zzz."), []);
    });

    test("values are copied in and out", async () => {
      const kv = await fixture().stores.kv(bucket("copy"));
      const v = enc("abc");
      await kv.put("k", v);
      v[0] = 0x7a;
      const got = (await kv.get("k"))!.value;
      assert.equal(dec(got), "abc");
      got[0] = 0x7a;
      assert.equal(dec((await kv.get("k"))?.value), "abc");
    });

    test("TTL: a key not rewritten for ttl vanishes; a rewrite keeps it; create works again", async () => {
      const f = fixture();
      const kv = await f.stores.kv(bucket("ttl"), { ttlMs: 1000 });
      assert.equal(kv.ttlMs, 1000);
      const r1 = await kv.create("lease", enc("x"));
      await kv.put("kept", enc("1"));
      await f.advance(600);
      await kv.update("lease", enc("y"), r1);
      await kv.put("kept", enc("2"));
      await f.advance(600);
      assert.equal(dec((await kv.get("lease"))?.value), "y", "rewritten 600 ms ago: still there");
      await kv.put("kept", enc("3"));
      await f.advance(900);
      let gone = false;
      for (let i = 0; i < 40 && !gone; i++) {
        gone = (await kv.get("lease")) === undefined;
        if (!gone) await f.advance(100);
      }
      assert.ok(gone, "the lease key expired");
      assert.equal(await kv.get("lease"), undefined);
      assert.ok(!(await kv.keys()).includes("lease"));
      await kv.create("lease", enc("z"));
      assert.equal(dec((await kv.get("lease"))?.value), "z");
    });

    test("an expired delete marker does not block create; update by stale revision after expiry loses", async () => {
      const f = fixture();
      const kv = await f.stores.kv(bucket("ttl2"), { ttlMs: 1000 });
      const r = await kv.create("k", enc("1"));
      await f.advance(1500);
      for (let i = 0; i < 40 && (await kv.get("k")) !== undefined; i++) await f.advance(100);
      await assert.rejects(kv.update("k", enc("2"), r), KvConflictError);
      await kv.create("k", enc("3"));
    });

    test("invalid bucket names and keys are refused the same way", async () => {
      const { stores } = fixture();
      await assert.rejects(stores.kv("has space"), InvalidStoreNameError);
      await assert.rejects(stores.kv("dots.not.allowed"), InvalidStoreNameError);
      const kv = await stores.kv(bucket("names"));
      for (const key of ["", ".a", "a.", "a..b", "a b", "a*", "a>", "x:y"]) {
        await assert.rejects(kv.put(key, enc("x")), InvalidStoreNameError, `key "${key}"`);
      }
      await kv.put(encodeKeyToken("gpu:0 ü.x"), enc("ok"));
      assert.equal(decodeKeyToken(encodeKeyToken("gpu:0 ü.x")), "gpu:0 ü.x");
    });

    test("blobs: put, get, overwrite, delete, large", async () => {
      const blobs = await fixture().stores.blobs(bucket("blobs"));
      assert.equal(await blobs.get("ckpt/1"), undefined);
      await blobs.put("ckpt/1", enc("params"));
      assert.equal(dec(await blobs.get("ckpt/1")), "params");
      await blobs.put("ckpt/1", enc("params v2"));
      assert.equal(dec(await blobs.get("ckpt/1")), "params v2");
      const big = new Uint8Array(3 * 1024 * 1024 + 7);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      await blobs.put("big", big);
      assert.deepEqual(await blobs.get("big"), big);
      await blobs.delete("ckpt/1");
      assert.equal(await blobs.get("ckpt/1"), undefined);
      await blobs.delete("ckpt/1");
      await blobs.put("ckpt/1", enc("again"));
      assert.equal(dec(await blobs.get("ckpt/1")), "again");
    });

    test("blobs: list by prefix, without deleted ones; deleting a missing blob is no error", async () => {
      const blobs = await fixture().stores.blobs(bucket("list"));
      assert.deepEqual(await blobs.list(), []);
      for (const name of ["ckpt.j1.10.r0", "ckpt.j1.10.manifest", "ckpt.j1.5.r0", "ckpt.j12.5.r0", "other"])
        await blobs.put(name, enc(name));
      await blobs.put("ckpt.j1.5.r0", enc("overwritten"));
      await blobs.delete("other");
      await blobs.delete("never-there");
      assert.deepEqual(await blobs.list("ckpt.j1."), [
        "ckpt.j1.10.manifest",
        "ckpt.j1.10.r0",
        "ckpt.j1.5.r0",
      ]);
      assert.deepEqual(await blobs.list(), [
        "ckpt.j1.10.manifest",
        "ckpt.j1.10.r0",
        "ckpt.j1.5.r0",
        "ckpt.j12.5.r0",
      ]);
      assert.deepEqual(await blobs.list("zzz"), []);
    });
  });
}
