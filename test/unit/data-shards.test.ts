import { test } from "node:test";
import assert from "node:assert/strict";
import type { RawRecord } from "../../actors/compute/dataset-read.js";
import {
  buildManifest,
  cutShards,
  DataManifest,
  datasetNameProblem,
  decodeShard,
  flockUrlName,
  sha256Hex,
  shardedOrder,
  shardsDigest,
  shardsForRange,
  verifyShard,
} from "../../actors/compute/dataset-shards.js";
import { BadDataError } from "../../actors/compute/errors.js";

const records = (n: number): RawRecord[] =>
  Array.from({ length: n }, (_, i) => ({ line: i + 2, values: { a: String(i), y: i % 3 ? "odd" : "even" } }));

test("cutShards puts every record in exactly one shard, in file order, within the limits", () => {
  const recs = records(103);
  const shards = cutShards(recs, { maxRecords: 10, maxBytes: 1 << 20 });
  assert.equal(shards.length, 11);
  assert.deepEqual(
    shards.map((s) => s.records),
    [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3],
  );
  let first = 0;
  const back: RawRecord[] = [];
  for (const s of shards) {
    assert.equal(s.first, first);
    assert.equal(s.sha256, sha256Hex(s.bytes));
    back.push(...decodeShard("x", s.bytes, s.records));
    first += s.records;
  }
  assert.deepEqual(back, recs);
  // A byte limit closes shards too: each holds at least one record, none goes far past the limit.
  const small = cutShards(recs, { maxRecords: 1000, maxBytes: 200 });
  assert.ok(small.length > 5, `${small.length} shards`);
  for (const s of small) assert.ok(s.bytes.length < 200 + 60, `${s.bytes.length} bytes`);
  assert.equal(
    small.reduce((n, s) => n + s.records, 0),
    103,
  );
  assert.deepEqual(cutShards([], { maxRecords: 10, maxBytes: 100 }), []);
});

test("decodeShard gives back JSONL values exactly (numbers, nulls, nesting, unicode) and refuses a bad shard", () => {
  const recs: RawRecord[] = [
    { line: 1, values: { x: 0.1 + 0.2, n: null, t: 'é ✓ \n "q"', deep: { a: [1, 2] } } },
    { line: 7, values: { x: -1e-300, big: 2 ** 53 - 1 } },
  ];
  const [shard] = cutShards(recs);
  assert.ok(shard);
  assert.deepEqual(decodeShard("s", shard.bytes, 2), recs);
  assert.throws(() => decodeShard("s", shard.bytes, 3), /holds 2 records, its manifest says 3/);
  assert.throws(() => decodeShard("s", new TextEncoder().encode('[1,{"a":1}]'), 1), /newline/);
  assert.throws(() => decodeShard("s", new TextEncoder().encode('{"a":1}\n'), 1), BadDataError);
  assert.throws(() => decodeShard("s", new TextEncoder().encode("[0,{}]\n"), 1), /not \[line, record\]/);
});

test("hash verification names the shard and both hashes", () => {
  const [shard] = cutShards(records(3));
  assert.ok(shard);
  verifyShard("flock://d (s0)", shard.bytes, shard.sha256);
  const bad = shard.bytes.slice();
  bad[0] = bad[0]! ^ 1;
  assert.throws(
    () => verifyShard("flock://d (s0)", bad, shard.sha256),
    (e: unknown) =>
      e instanceof BadDataError && e.message.includes("flock://d (s0)") && e.message.includes(shard.sha256),
  );
});

test("the manifest schema accepts what buildManifest writes and refuses a gap, a wrong total or a wrong digest", () => {
  const shards = cutShards(records(25), { maxRecords: 10, maxBytes: 1 << 20 });
  const table = { file: "/data/f.csv", columns: ["a", "y"], sha256: "0".repeat(64) };
  const m = buildManifest("flowers", "csv", table, 123, shards, (i) => `shard.flowers.p.${i}`, new Date(0));
  assert.equal(m.records, 25);
  assert.equal(m.file.name, "f.csv");
  assert.equal(m.sha256, shardsDigest(m.shards));
  assert.deepEqual(DataManifest.parse(JSON.parse(JSON.stringify(m))), m);
  const refuse = (bad: unknown, message: RegExp): void => {
    const r = DataManifest.safeParse(bad);
    assert.equal(r.success, false);
    assert.match(r.error?.message ?? "", message);
  };
  const [s0, s1, s2] = m.shards;
  assert.ok(s0 && s1 && s2);
  refuse({ ...m, shards: [s0, s2] }, /starts at record 20, expected 10/);
  refuse({ ...m, records: 26 }, /hold 25 records/);
  refuse({ ...m, bytes: m.bytes + 1 }, /bytes/);
  refuse({ ...m, sha256: "f".repeat(64) }, /digest/);
  refuse({ ...m, shards: [{ ...s0, sha256: "a".repeat(64) }, s1, s2] }, /digest/);
  refuse({ ...m, name: "a.b" }, /name/);
  refuse({ ...m, extra: 1 }, /extra/);
});

test("dataset names and flock:// URLs", () => {
  for (const good of ["flowers", "a", "A-1_b", "x".repeat(64)])
    assert.equal(datasetNameProblem(good), undefined);
  for (const bad of ["", "-a", "a.b", "a/b", "a b", "é", "x".repeat(65), "../x"])
    assert.match(datasetNameProblem(bad) ?? "", /not a valid dataset name/, bad);
  assert.equal(flockUrlName("flock://flowers"), "flowers");
  assert.equal(flockUrlName("flock://a.b"), undefined);
  assert.equal(flockUrlName("file:///x"), undefined);
});

test("shardsForRange names exactly the shards a ledger range touches", () => {
  const shards = [
    { first: 0, records: 10 },
    { first: 10, records: 10 },
    { first: 20, records: 5 },
  ];
  assert.deepEqual(shardsForRange(shards, 0, 10), [0]);
  assert.deepEqual(shardsForRange(shards, 9, 11), [0, 1]);
  assert.deepEqual(shardsForRange(shards, 12, 25), [1, 2]);
  assert.deepEqual(shardsForRange(shards, 25, 30), []);
});

test("shardedOrder: a deterministic permutation, shard by shard; a range of positions needs at most two shards at any world size", () => {
  const sizes = [10, 10, 10, 7, 3];
  const order = shardedOrder(sizes, 42);
  assert.equal(order.length, 40);
  assert.deepEqual(
    [...order].sort((a, b) => a - b),
    Array.from({ length: 40 }, (_, i) => i),
  );
  assert.deepEqual(shardedOrder(sizes, 42), order, "same seed, same order");
  assert.notDeepEqual(shardedOrder(sizes, 43), order, "another seed, another order");
  // Consecutive positions stay within one shard until it is used up: each shard is one run.
  const firsts = [0, 10, 20, 30, 37];
  const shardOf = (i: number): number => firsts.filter((f) => f <= i).length - 1;
  let runs = 1;
  for (let p = 1; p < order.length; p++) if (shardOf(order[p]!) !== shardOf(order[p - 1]!)) runs++;
  assert.equal(runs, sizes.length);
  // In-shard order is shuffled, not the file order.
  assert.notDeepEqual(
    [...order.subarray(0, 10)],
    [...order.subarray(0, 10)].sort((a, b) => a - b),
  );
  // Whatever the world size, a worker handed a range of positions no longer than a shard reads
  // at most two shards for it: streaming by shard holds for 1, 2 or 3 workers of a global batch.
  for (const workers of [1, 2, 3]) {
    const batch = Math.floor(6 / workers);
    for (let start = 0; start < order.length; start += batch) {
      const touched = new Set([...order.subarray(start, start + batch)].map(shardOf));
      assert.ok(touched.size <= 2, `${workers} workers, positions ${start}+${batch}: ${touched.size} shards`);
    }
  }
});
