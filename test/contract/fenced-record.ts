/**
 * The coordinator's state record (actors/coordinator/fenced-record.ts) on both stores: once a new
 * holder has claimed it, a deposed holder's late write fails instead of landing; a retried write
 * whose first answer was lost is recognised as landed; writes run in call order. Run on memory
 * (test/unit/fenced-record.test.ts) and on JetStream (test/integration/fenced-record-jetstream.test.ts).
 * @module
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FencedRecord, RecordFencedError } from "../../actors/coordinator/fenced-record.js";
import type { KvStore, StoreProvider } from "../../runtime/store/index.js";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined): string | undefined => (b ? new TextDecoder().decode(b) : undefined);
let n = 0;
const key = (): string => `job-${process.pid}-${++n}`;

/** The fenced-record scenarios on the stores `stores()` gives. */
export function fencedRecordContract(name: string, stores: () => StoreProvider): void {
  describe(`fenced record on ${name}`, () => {
    test("a deposed holder's write fails after its successor's claim; the successor's value stays", async () => {
      const kv = await stores().kv("fencedtest");
      const k = key();
      const old = new FencedRecord(async () => kv, k);
      assert.equal(await old.read(), undefined);
      await old.write(bytes("step 1"));
      await old.write(bytes("step 2"));

      const successor = new FencedRecord(async () => kv, k);
      assert.equal(text(await successor.read()), "step 2");
      await successor.write(bytes("step 2, claimed")); // the claim

      await assert.rejects(old.write(bytes("step 3 (late)")), (e: Error) => {
        assert.ok(e instanceof RecordFencedError, `${e.name}: ${e.message}`);
        assert.match(e.message, /written by another holder/);
        return true;
      });
      await successor.write(bytes("step 3"));
      assert.equal(text((await kv.get(k))?.value), "step 3");
      // The deposed holder stays fenced until it reads again (as it does on its next acquisition).
      await assert.rejects(old.write(bytes("again")), RecordFencedError);
      assert.equal(text(await old.read()), "step 3");
    });

    test("a previous holder's write that lands before the claim makes the claim fail; a re-read claims", async () => {
      const kv = await stores().kv("fencedtest");
      const k = key();
      const old = new FencedRecord(async () => kv, k);
      await old.read();
      await old.write(bytes("step 1"));
      const successor = new FencedRecord(async () => kv, k);
      assert.equal(text(await successor.read()), "step 1");
      await old.write(bytes("step 2")); // in flight when the successor read
      await assert.rejects(successor.write(bytes("step 1, claimed")), RecordFencedError);
      assert.equal(text(await successor.read()), "step 2");
      await successor.write(bytes("step 2, claimed"));
      await assert.rejects(old.write(bytes("step 3")), RecordFencedError);
    });

    test("a write whose answer was lost is retried and recognised as landed", async () => {
      const real = await stores().kv("fencedtest");
      let loseNext = 1; // the first update lands, but its caller sees a timeout
      const lossy: KvStore = {
        ...bind(real),
        update: async (k, v, r) => {
          const revision = await real.update(k, v, r);
          if (loseNext-- > 0) throw new Error("TIMEOUT");
          return revision;
        },
      };
      const k = key();
      const record = new FencedRecord(async () => lossy, k);
      await record.read();
      await record.write(bytes("a"));
      let retries = 0;
      await record.write(bytes("b"), { delayMs: 5, onRetry: () => retries++ });
      assert.equal(retries, 1, "one retry after the lost answer");
      await record.write(bytes("c")); // and the writer's revision is the landed one
      assert.equal(text((await real.get(k))?.value), "c");
    });

    test("writes run one at a time in call order", async () => {
      const kv = await stores().kv("fencedtest");
      const k = key();
      const record = new FencedRecord(async () => kv, k);
      await record.read();
      const values = Array.from({ length: 20 }, (_, i) => `v${i}`);
      await Promise.all(values.map((v) => record.write(bytes(v))));
      assert.equal(text((await kv.get(k))?.value), "v19");
    });

    test("a write aborted by its caller gives up; the next write still goes through", async () => {
      const real = await stores().kv("fencedtest");
      let down = true;
      const flaky: KvStore = {
        ...bind(real),
        create: (k, v) => (down ? Promise.reject(new Error("no responders")) : real.create(k, v)),
      };
      const k = key();
      const record = new FencedRecord(async () => flaky, k);
      await record.read();
      let attempts = 0;
      await assert.rejects(
        record.write(bytes("lost"), { delayMs: 5, abort: () => ++attempts >= 3 }),
        /no responders/,
      );
      down = false;
      await record.write(bytes("kept"));
      assert.equal(text((await real.get(k))?.value), "kept");
    });
  });
}

/** The store's methods bound to it, to spread into a wrapper. */
function bind(kv: KvStore): KvStore {
  return {
    bucket: kv.bucket,
    ttlMs: kv.ttlMs,
    get: (k) => kv.get(k),
    create: (k, v) => kv.create(k, v),
    update: (k, v, r) => kv.update(k, v, r),
    put: (k, v) => kv.put(k, v),
    delete: (k, r) => kv.delete(k, r),
    keys: (p) => kv.keys(p),
  };
}
