/**
 * Streamed datasets (`stream: true`, `actors/compute/dataset-stream*.ts`): the spec's rules, the
 * whole-shard test split, the shard of a sample, the sharded order, the submitter's profile
 * (equal to the statistics of the whole table), the LRU bound on decoded shards, and a trainer's
 * node cache holding only the shards of the positions it was handed.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { MemoryStores } from "../../runtime/store/memory.js";
import type { RawRecord } from "../../actors/compute/dataset-read.js";
import { DATASETS_BUCKET, putDataset } from "../../actors/compute/dataset-store.js";
import { dataAccess, fetchStoredSources } from "../../actors/compute/dataset-store-cache.js";
import { DatasetSpec, FileDatasetSpec } from "../../actors/compute/dataset-spec.js";
import { loadDataset } from "../../actors/compute/datasets.js";
import { loadFileDataset } from "../../actors/compute/dataset-file.js";
import { readStoredTable } from "../../actors/compute/dataset-store-cache.js";
import { loadStreamedDataset } from "../../actors/compute/dataset-stream.js";
import {
  shardOf,
  shardsForIndices,
  splitShards,
  streamLayout,
  streamOrder,
  type ShardRef,
} from "../../actors/compute/dataset-stream-layout.js";
import { profileStream, storeShardReader } from "../../actors/compute/dataset-stream-profile.js";
import { SampleOrder } from "../../actors/compute/dataset-stream-order.js";
import { withStreamProfile } from "../../actors/job/check.js";
import { parseJobSpec } from "../../actors/job/spec.js";
import { sha256Hex, type DataManifest } from "../../actors/compute/dataset-shards.js";
import { BadDataError } from "../../actors/compute/errors.js";
import { trainWordPiece } from "../../actors/compute/tokenizer-train.js";

const dir = mkdtempSync(join(tmpdir(), "flock-stream-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** `n` records of 2 features and a class that the first feature decides (3 classes). */
function records(n: number, seed = 1): RawRecord[] {
  let s = seed;
  const rand = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  return Array.from({ length: n }, (_, i) => {
    const k = i % 3;
    return {
      line: i + 2,
      values: { a: `${(k * 4 + rand()).toFixed(3)}`, b: `${(rand() * 10).toFixed(3)}`, y: `c${k}` },
    };
  });
}

/** Stores `rows` as dataset `name` in shards of `per` records; its manifest. */
async function put(
  stores: MemoryStores,
  name: string,
  rows: RawRecord[],
  per: number,
): Promise<DataManifest> {
  const table = {
    file: `/data/${name}.csv`,
    columns: ["a", "b", "y"],
    records: rows,
    sha256: sha256Hex(name),
  };
  return putDataset(await stores.blobs(DATASETS_BUCKET), name, "csv", table, {
    fileBytes: 1,
    limits: { maxRecords: per, maxBytes: 1 << 20 },
  });
}

const streamed = (extra: Record<string, unknown> = {}): FileDatasetSpec =>
  FileDatasetSpec.parse({ source: "flock://d", format: "csv", label: "y", stream: true, ...extra });

/** The spec with its profile, as the submitter places it. */
async function profiled(stores: MemoryStores, dataset: FileDatasetSpec, seed = 3): Promise<FileDatasetSpec> {
  const spec = parseJobSpec({
    model: "mlp",
    dataset,
    epochs: 1,
    globalBatch: 8,
    optimizer: { name: "sgd", lr: 0.1 },
    seed,
  });
  const checked = await withStreamProfile(spec, stores);
  return FileDatasetSpec.parse(checked.dataset);
}

test("stream: true is for flock:// csv/jsonl sources; text needs a file:// tokenizer; images refuse it", () => {
  const issues = (value: unknown): string =>
    DatasetSpec.safeParse(value)
      .error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`)
      .join("; ") ?? "";
  assert.match(
    issues({ source: "file:///d.csv", format: "csv", label: "y", stream: true }),
    /source: .*flock:\/\/NAME/,
  );
  assert.match(
    issues({ source: "flock://d", format: "jsonl", label: "y", text: "t", stream: true }),
    /text: .*not supported with stream: true/,
  );
  assert.match(
    issues({ source: "file:///d", format: "images", stream: true }),
    /stream: stream: true is not supported for images/,
  );
  assert.match(issues({ source: "flock://d", format: "csv", label: "y", profile: {} }), /profile/);
  assert.equal(issues({ source: "flock://d", format: "csv", label: "y", stream: true }), "");
  assert.equal(
    issues({ source: "flock://d", format: "jsonl", text: "t", tokenizer: "file:///m", stream: true }),
    "",
  );
});

const refs = (sizes: number[]): ShardRef[] => {
  let first = 0;
  return sizes.map((records, i) => {
    const shard = { name: `s${i}`, first, records, bytes: 1, sha256: "0".repeat(64) };
    first += records;
    return { url: "flock://d", shard };
  });
};

test("a { fraction } test split takes whole shards, at least one each side; shardOf is the binary search", () => {
  const manifest = { shards: refs([5, 7, 3, 9, 4, 6, 8, 2, 5, 1]).map((r) => r.shard) };
  const layout = streamLayout(streamed({ test: { fraction: 0.3 } }), { "flock://d": manifest }, 42);
  assert.ok("refs" in layout.test);
  assert.equal(layout.test.refs.length, 3);
  assert.equal(layout.train.refs.length, 7);
  const names = (r: ShardRef[]) => r.map((x) => x.shard.name);
  assert.equal(
    new Set([...names(layout.train.refs), ...names(layout.test.refs)]).size,
    10,
    "every shard on one side",
  );
  assert.deepEqual(
    streamLayout(streamed({ test: { fraction: 0.3 } }), { "flock://d": manifest }, 42),
    layout,
    "same seed, same split",
  );
  assert.throws(
    () => streamLayout(streamed({ test: { fraction: 0.01 } }), { "flock://d": manifest }, 1),
    (e: unknown) =>
      e instanceof BadDataError &&
      /leaves the test split empty: a streamed dataset is split by whole shards/.test(e.message),
  );
  assert.throws(
    () =>
      streamLayout(
        streamed({ test: { fraction: 0.2 } }),
        { "flock://d": { shards: manifest.shards.slice(0, 1) } },
        1,
      ),
    /split empty/,
  );
  const split = splitShards(refs([5, 7, 3, 9]));
  for (let i = 0; i < split.records; i++) {
    const linear = split.firsts.filter((f) => f <= i).length - 1;
    assert.equal(shardOf(split, i), linear, `index ${i}`);
  }
  assert.equal(shardOf(split, split.records), -1);
  assert.equal(shardOf(split, -1), -1);
  assert.deepEqual(names(shardsForIndices(split, [4, 5, 11, 6, 12, 23])), ["s0", "s1", "s2", "s3"]);
  assert.throws(() => shardsForIndices(split, [24]), RangeError);
});

test("the sharded order keeps consecutive positions in one shard and depends on the shard sizes and seed only", () => {
  const sizes = Array.from({ length: 40 }, (_, i) => 20 + (i % 7));
  const layout = { train: splitShards(refs(sizes)), test: { file: "file:///t.csv" } };
  const order = streamOrder(layout, 99);
  assert.deepEqual(
    [...order].sort((a, b) => a - b),
    Array.from({ length: order.length }, (_, i) => i),
    "a permutation",
  );
  let changes = 0;
  for (let p = 1; p < order.length; p++)
    if (shardOf(layout.train, order[p]!) !== shardOf(layout.train, order[p - 1]!)) changes++;
  assert.equal(changes, 39, "each shard's samples are one run of positions");
  assert.deepEqual(streamOrder(layout, 99), order, "deterministic for a seed");
  assert.notDeepEqual(streamOrder(layout, 100), order);
  // Positions → samples does not depend on who takes which range: 2 or 3 trainers see the same samples.
  const takers = (k: number) => Array.from(order, (sample, p) => ({ taker: Math.floor(p / 16) % k, sample }));
  assert.deepEqual(
    takers(2).map((t) => t.sample),
    takers(3).map((t) => t.sample),
  );
});

test("the submitter's profile is the whole table's statistics, and a streamed split is the same samples", async () => {
  const stores = new MemoryStores();
  await put(stores, "d", records(500), 25);
  await put(stores, "t", records(120, 7), 40);
  const spec = await profiled(stores, streamed({ test: "flock://t" }));
  const whole = FileDatasetSpec.parse({ source: "flock://d", format: "csv", label: "y", test: "flock://t" });
  const access = dataAccess(stores, join(dir, "profile-cache"));
  const all = await fetchStoredSources(whole, access);
  const file = loadFileDataset(whole, 3, (url, format) => readStoredTable(url, format, all));
  assert.deepEqual(spec.profile?.features, file.preprocessing.features, "mean and std exactly equal");
  assert.deepEqual(spec.profile?.classes, file.preprocessing.classes);
  assert.equal(spec.profile?.trainRecords, 500);
  const stream = await loadDataset(spec, 3, await fetchStoredSources(spec, access, { streamed: "none" }));
  const every = (n: number) => Array.from({ length: n }, (_, i) => i);
  assert.deepEqual(stream.trainBatch(every(500)), file.trainBatch(every(500)));
  assert.deepEqual(stream.testBatch(every(120)), file.testBatch(every(120)));
});

test("bad data in any shard is refused by the profile pass with the shard, line and field", async () => {
  const stores = new MemoryStores();
  const rows = records(200);
  rows[137] = { line: 139, values: { a: "1.5", b: "oops", y: "c1" } };
  await put(stores, "d", rows, 20);
  await assert.rejects(profiled(stores, streamed()), (e: unknown) => {
    assert.ok(e instanceof BadDataError);
    assert.match(e.message, /flock:\/\/d \(shard\.d\.\w+\.000006\).*line 139.*b.*"oops" is not a number/);
    return true;
  });
  const test2 = new MemoryStores();
  await put(test2, "d", records(200), 20);
  await put(test2, "t", [{ line: 2, values: { a: "1", b: "2", y: "c9" } }], 20);
  await assert.rejects(
    profiled(test2, streamed({ test: "flock://t" })),
    /unknown class "c9": not in the training split/,
  );
});

test("a streamed dataset decodes at most K shards at a time: 40 shards gathered in the sharded order", async () => {
  const stores = new MemoryStores();
  await put(stores, "d", records(1000), 25);
  const spec = await profiled(stores, streamed({ test: { fraction: 0.1 } }));
  const access = dataAccess(stores, join(dir, "lru-cache"));
  for (const k of [1, 2, 4]) {
    const stored = await fetchStoredSources(spec, access); // the test shards (as the evaluator)
    const order = new SampleOrder(spec, (e) => 1000 + e, access);
    order.adopt(stored);
    const d = loadStreamedDataset(spec, stored, { maxDecoded: k });
    assert.equal(d.trainSize, 900);
    assert.equal(d.layout.train.refs.length, 36);
    const seen = new Set<number>();
    for (let start = 0; start < d.trainSize; start += 16) {
      const at = { epoch: 0, start, end: Math.min(start + 16, d.trainSize) };
      const indices = order.indices(at, d.trainSize);
      await order.prepare(at, indices, d.trainSize);
      const batch = d.trainBatch(indices);
      assert.equal(batch.n, indices.length);
      indices.forEach((i) => seen.add(i));
      assert.ok(d.stats.train.held <= k);
    }
    assert.equal(seen.size, 900, "every training sample once");
    assert.equal(d.stats.train.peak, k, "never more than K decoded");
    assert.equal(d.stats.train.decodes, 36, "the order visits each shard in one run: each decoded once");
    assert.equal(d.testBatch(Array.from({ length: d.testSize }, (_, i) => i)).n, 100);
    assert.ok(d.stats.test.peak <= k);
  }
});

test("a trainer's node caches only the shards of the positions it is handed (and the next ones)", async () => {
  const stores = new MemoryStores();
  await put(stores, "d", records(1000), 25);
  const spec = await profiled(stores, streamed({ test: { fraction: 0.1 } }));
  const cache = join(dir, "node-cache");
  const access = dataAccess(stores, cache);
  const stored = await fetchStoredSources(spec, access, { streamed: "none" });
  assert.ok(!existsSync(cache), "a trainer fetches nothing up front");
  const order = new SampleOrder(spec, (e) => 7 + e, access);
  order.adopt(stored);
  const at = { epoch: 0, start: 100, end: 150 };
  const indices = order.indices(at, 900);
  const fetched = await order.prepare(at, indices, 900);
  const layout = streamLayout(spec, { "flock://d": stored!["flock://d"]!.manifest }, spec.profile!.splitSeed);
  const expect = new Set(shardsForIndices(layout.train, indices).map((r) => r.shard.sha256));
  assert.equal(fetched, expect.size);
  const next = shardsForIndices(layout.train, order.indices({ epoch: 0, start: 150, end: 200 }, 900));
  await order.prepare({ epoch: 0, start: 150, end: 150 }, [], 900); // waits for the prefetch
  const cached = new Set(readdirSync(cache).map((f) => f.replace(".shard", "")));
  const wanted = new Set([...expect, ...next.map((r) => r.shard.sha256)]);
  assert.deepEqual(cached, wanted, `cached ${cached.size} of 36 training shards: those of [100, 200) only`);
  assert.ok(cached.size <= 6);
  // The evaluator's default fetch takes the test shards (the bounded split), and only those more.
  const evalCache = join(dir, "eval-cache");
  await fetchStoredSources(spec, dataAccess(stores, evalCache));
  assert.equal(readdirSync(evalCache).length, 4);
  const dataset = await loadDataset(spec, 3, await fetchStoredSources(spec, dataAccess(stores, evalCache)));
  assert.equal(dataset.testBatch([0, 99]).n, 2);
  assert.throws(
    () => dataset.trainBatch([0]),
    /missing or corrupt/,
    "a training shard never fetched is an error",
  );
  // A file read whole is not streamed: the order is the seeded permutation of before.
  const plain = new SampleOrder("mnist", (e) => 7 + e);
  plain.adopt(undefined);
  assert.equal(plain.streamed, false);
  assert.equal(await plain.prepare({ epoch: 0, start: 0, end: 4 }, [1, 2, 3, 4], 10), 0);
});

test("a node refuses a stored dataset that changed since its profile was computed", async () => {
  const stores = new MemoryStores();
  await put(stores, "d", records(200), 20);
  const spec = await profiled(stores, streamed());
  const other = new MemoryStores();
  await put(other, "d", records(200, 5), 20);
  const stored = await fetchStoredSources(spec, dataAccess(other, join(dir, "changed")), {
    streamed: "none",
  });
  assert.throws(() => loadStreamedDataset(spec, stored), /is not the dataset the job was checked on/);
  const bare = FileDatasetSpec.parse({ ...spec, profile: undefined });
  assert.throws(() => loadStreamedDataset(bare, stored), /needs the dataset profile its submitter computes/);
  const reader = storeShardReader(await other.blobs(DATASETS_BUCKET));
  const manifest = stored!["flock://d"]!.manifest;
  const profile = await profileStream(bare, { "flock://d": manifest }, 3, reader);
  assert.equal(profile.sha256, manifest.sha256);
});

test("a streamed text dataset with a file:// tokenizer gives the token ids the whole dataset gives", async () => {
  const stores = new MemoryStores();
  const words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
  const rows = Array.from({ length: 300 }, (_, i) => ({
    line: i + 1,
    values: { t: `${words[i % 6]} ${words[(i * 5) % 6]} ${words[(i * 7) % 6]}`, y: i % 2 },
  }));
  const table = { file: "/data/t.jsonl", columns: ["t", "y"], records: rows, sha256: sha256Hex("t") };
  await putDataset(await stores.blobs(DATASETS_BUCKET), "d", "jsonl", table, {
    fileBytes: 1,
    limits: { maxRecords: 20, maxBytes: 1 << 20 },
  });
  const model = join(dir, "tok-model");
  mkdirSync(model, { recursive: true });
  const tokenizer = trainWordPiece(
    rows.map((r) => r.values.t),
    { vocabSize: 40 },
  );
  writeFileSync(
    join(model, "flock.json"),
    JSON.stringify({ flock: 1, maxLen: 8, tokenizer: tokenizer.toJSON() }),
  );
  const base = {
    source: "flock://d",
    format: "jsonl",
    label: "y",
    text: "t",
    tokenizer: pathToFileURL(model).href,
  };
  const spec = await profiled(
    stores,
    FileDatasetSpec.parse({ ...base, stream: true, test: { fraction: 0.2 } }),
  );
  const access = dataAccess(stores, join(dir, "tok-cache"));
  const stream = loadStreamedDataset(spec, await fetchStoredSources(spec, access));
  assert.equal(stream.inputSize, 8);
  assert.equal(stream.tokens?.vocabulary, tokenizer.size);
  // The same records held whole: the training shards' records, in split order.
  const all = await fetchStoredSources(FileDatasetSpec.parse(base), access);
  const whole = loadFileDataset(FileDatasetSpec.parse({ ...base, test: "flock://d" }), 3, (url, format) =>
    readStoredTable(url, format, all),
  );
  const trainLines = new Set(
    stream.layout.train.refs.flatMap((r) =>
      rows.slice(r.shard.first, r.shard.first + r.shard.records).map((x) => x.line),
    ),
  );
  const wholeIndex = rows.flatMap((r, i) => (trainLines.has(r.line) ? [i] : []));
  const every = Array.from({ length: stream.trainSize }, (_, i) => i);
  assert.deepEqual(stream.trainBatch(every).x, whole.trainBatch(wholeIndex).x);
  assert.deepEqual(stream.trainBatch(every).y, whole.trainBatch(wholeIndex).y);
});

test("the node cache's bound never evicts the shards of the batch in hand", async () => {
  const stores = new MemoryStores();
  await put(stores, "d", records(400), 20);
  const spec = await profiled(stores, streamed({ test: { fraction: 0.1 } }));
  const cache = join(dir, "tight-cache");
  const access = dataAccess(stores, cache, 1); // 1 byte: every shard is over the bound
  const order = new SampleOrder(spec, (e) => e, access);
  order.adopt(await fetchStoredSources(spec, access, { streamed: "none" }));
  const old = new Date(Date.now() - 3600_000);
  for (const start of [0, 200]) {
    for (const f of existsSync(cache) ? readdirSync(cache) : []) utimesSync(join(cache, f), old, old);
    const at = { epoch: 0, start, end: start + 30 };
    const indices = order.indices(at, 360);
    await order.prepare(at, indices, 360);
    const d = loadStreamedDataset(spec, await fetchStoredSources(spec, access, { streamed: "none" }));
    assert.equal(d.trainBatch(indices).n, 30, "the batch's shards are there");
    const layout = d.layout.train;
    const inHand = new Set(shardsForIndices(layout, indices).map((r) => r.shard.sha256));
    const ahead = new Set(
      shardsForIndices(layout, order.indices({ epoch: 0, start: start + 30, end: start + 60 }, 360)).map(
        (r) => r.shard.sha256,
      ),
    );
    await order.prepare({ epoch: 0, start: at.end, end: at.end }, [], 360); // the prefetch has landed
    const held = new Set(readdirSync(cache).map((f) => f.replace(".shard", "")));
    assert.deepEqual(
      held,
      new Set([...inHand, ...ahead]),
      "older shards went, the batch's and the next ones' stayed",
    );
  }
});
