/**
 * The node's shard cache is bounded (`actors/compute/dataset-cache-evict.ts`): least recently used
 * shards go first, never the ones a fetch keeps nor those used within IN_USE_MS; a good read marks
 * a shard used; a fetch evicts others to fit `maxBytes`, and a corrupt cached shard is fetched again.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  IN_USE_MS,
  evictCache,
  evictionPlan,
  listCache,
  type CachedShard,
} from "../../actors/compute/dataset-cache-evict.js";
import { dataAccess, fetchStoredSources } from "../../actors/compute/dataset-store-cache.js";
import { putDataset } from "../../actors/compute/dataset-store.js";
import { FileDatasetSpec } from "../../actors/compute/dataset-spec.js";
import { sha256Hex } from "../../actors/compute/dataset-shards.js";
import { MemoryStores } from "../../runtime/store/memory.js";

const dir = mkdtempSync(join(tmpdir(), "flock-cache-evict-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const H = (c: string): string => c.repeat(64);
const NOW = 10 ** 12;

test("evictionPlan: oldest use first until the rest fit; kept and in-use shards are spared", () => {
  const old = NOW - IN_USE_MS - 1;
  const shards: CachedShard[] = [
    { sha256: H("a"), bytes: 100, usedAt: old - 300 },
    { sha256: H("b"), bytes: 100, usedAt: old - 200 },
    { sha256: H("c"), bytes: 100, usedAt: old - 100 },
    { sha256: H("d"), bytes: 100, usedAt: NOW - 1000 }, // in use
  ];
  const names = (p: CachedShard[]): string[] => p.map((s) => s.sha256[0] ?? "");
  assert.deepEqual(names(evictionPlan(shards, 400, new Set(), NOW, IN_USE_MS)), [], "fits already");
  assert.deepEqual(names(evictionPlan(shards, 250, new Set(), NOW, IN_USE_MS)), ["a", "b"]);
  assert.deepEqual(names(evictionPlan(shards, 250, new Set([H("a")]), NOW, IN_USE_MS)), ["b", "c"]);
  assert.deepEqual(
    names(evictionPlan(shards, 0, new Set([H("b")]), NOW, IN_USE_MS)),
    ["a", "c"],
    "the bound is soft: kept and in-use shards stay above it",
  );
});

function spec(source: string): FileDatasetSpec {
  return FileDatasetSpec.parse({ source, format: "csv", label: "y" });
}

/** A table of `n` rows, stored as dataset `name` in shards of 10 records. */
async function stored(stores: MemoryStores, name: string, n: number): Promise<void> {
  const records = Array.from({ length: n }, (_, i) => ({ line: i + 2, values: { x: `${i}`, y: name } }));
  const table = { file: `/data/${name}.csv`, columns: ["x", "y"], records, sha256: sha256Hex(name) };
  await putDataset(await stores.blobs("datasets"), name, "csv", table, {
    fileBytes: 1,
    limits: { maxRecords: 10, maxBytes: 1 << 20 },
  });
}

const age = (cache: string, sha: string, ms: number): void => {
  const t = new Date(Date.now() - ms);
  utimesSync(join(cache, `${sha}.shard`), t, t);
};

test("a fetch keeps the cache under its bound, evicting the least recently used other shards", async () => {
  const stores = new MemoryStores();
  const cache = join(dir, "bounded");
  await stored(stores, "one", 30);
  await stored(stores, "two", 30);
  const first = await fetchStoredSources(spec("flock://one"), dataAccess(stores, cache, 1));
  const oneShards = first?.["flock://one"]?.manifest.shards.map((s) => s.sha256) ?? [];
  assert.equal(oneShards.length, 3);
  assert.equal(listCache(cache).length, 3, "over the bound, but the fetched dataset is kept");
  // one's shards were used long ago, except the second, read recently by a job.
  for (const sha of oneShards) age(cache, sha, IN_USE_MS + 60_000);
  age(cache, oneShards[1] ?? "", 1000);
  const second = await fetchStoredSources(spec("flock://two"), dataAccess(stores, cache, 1));
  const twoShards = second?.["flock://two"]?.manifest.shards.map((s) => s.sha256) ?? [];
  const left = new Set(listCache(cache).map((s) => s.sha256));
  assert.deepEqual(
    [...left].sort(),
    [...twoShards, oneShards[1] ?? ""].sort(),
    "old shards of one went; the in-use one and two's stayed",
  );

  // A read of a cached shard marks it used: aged, read again by a fetch, it is no longer evictable.
  for (const sha of twoShards) age(cache, sha, IN_USE_MS + 60_000);
  await fetchStoredSources(spec("flock://two"), dataAccess(stores, cache, 1));
  const used = listCache(cache).filter((s) => twoShards.includes(s.sha256));
  assert.ok(
    used.every((s) => Date.now() - s.usedAt < IN_USE_MS),
    "each cached shard read was touched",
  );
  assert.equal(evictCache(cache, 1, new Set(), Date.now(), IN_USE_MS).evicted, 0, "all in use now");
  const all = evictCache(cache, 0, new Set(), Date.now() + 2 * IN_USE_MS, IN_USE_MS);
  assert.equal(all.heldBytes, 0);
  assert.equal(readdirSync(cache).length, 0);
});

test("a corrupt cached shard is fetched again, and other files in the folder are not the cache's", async () => {
  const stores = new MemoryStores();
  const cache = join(dir, "corrupt");
  await stored(stores, "three", 10);
  const got = await fetchStoredSources(spec("flock://three"), dataAccess(stores, cache));
  const sha = got?.["flock://three"]?.manifest.shards[0]?.sha256 ?? "";
  writeFileSync(join(cache, `${sha}.shard`), "garbage");
  writeFileSync(join(cache, "notes.txt"), "mine");
  await fetchStoredSources(spec("flock://three"), dataAccess(stores, cache));
  assert.equal(listCache(cache)[0]?.bytes, got?.["flock://three"]?.manifest.shards[0]?.bytes ?? -1);
  evictCache(cache, 0, new Set(), Date.now() + 2 * IN_USE_MS, IN_USE_MS);
  assert.deepEqual(readdirSync(cache), ["notes.txt"]);
});
