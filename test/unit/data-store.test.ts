import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { MemoryStores } from "../../runtime/store/index.js";
import { readTable } from "../../actors/compute/dataset-read.js";
import {
  checkStoredDataset,
  DATASETS_BUCKET,
  DatasetExistsError,
  DatasetNotFoundError,
  IncompleteDatasetError,
  listDatasets,
  manifestName,
  putDataset,
  removeDataset,
} from "../../actors/compute/dataset-store.js";
import {
  checkFileSources,
  dataAccess,
  fetchStoredSources,
  storedUrls,
} from "../../actors/compute/dataset-store-cache.js";
import { FileDatasetSpec } from "../../actors/compute/dataset-spec.js";
import { loadDataset, type Dataset } from "../../actors/compute/datasets.js";
import type { FileDataset } from "../../actors/compute/dataset-file.js";
import { BadDataError } from "../../actors/compute/errors.js";
import { flowersCsv, reviewsJsonl } from "../../examples/data/generate.js";
import { failingOnPut } from "./store-fakes.js";

const isFileDataset = (d: Dataset): d is FileDataset => "preprocessing" in d;

const dir = mkdtempSync(join(tmpdir(), "flock-data-store-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return pathToFileURL(path).href;
}

const flowersUrl = file("flowers.csv", flowersCsv(300));
const reviewsUrl = file("reviews.jsonl", reviewsJsonl(200, 3));
const reviewsTestUrl = file("reviews-test.jsonl", reviewsJsonl(60, 4));
const limits = { maxRecords: 40, maxBytes: 1 << 20 };

async function put(stores: MemoryStores, name: string, url: string, format: "csv" | "jsonl") {
  const blobs = await stores.blobs(DATASETS_BUCKET);
  return putDataset(blobs, name, format, readTable(url, format), { fileBytes: 1, limits });
}

/** The train and test batches of every sample: equal iff two datasets are the same samples in the same order. */
async function allSamples(spec: FileDatasetSpec, stored?: Parameters<typeof loadDataset>[2]) {
  const d = await loadDataset(spec, 7, stored);
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  return {
    train: d.trainBatch(all(d.trainSize)),
    test: d.testBatch(all(d.testSize)),
    size: [d.trainSize, d.testSize],
  };
}

test("put, ls, rm: shards first and the manifest last; a taken name is refused; rm removes everything", async () => {
  const stores = new MemoryStores();
  const progress: number[] = [];
  const blobs = await stores.blobs(DATASETS_BUCKET);
  const m = await putDataset(blobs, "flowers", "csv", readTable(flowersUrl, "csv"), {
    fileBytes: 9,
    limits,
    onProgress: (p) => progress.push(p.shards),
  });
  assert.equal(m.records, 300);
  assert.equal(m.shards.length, 8);
  assert.deepEqual(progress, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(m.columns, ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]);
  await put(stores, "reviews", reviewsUrl, "jsonl");
  const listing = await listDatasets(blobs);
  assert.deepEqual(
    listing.datasets.map((d) => [d.name, d.records, d.format]),
    [
      ["flowers", 300, "csv"],
      ["reviews", 200, "jsonl"],
    ],
  );
  await assert.rejects(put(stores, "flowers", flowersUrl, "csv"), DatasetExistsError);
  assert.equal(await removeDataset(blobs, "flowers"), 9);
  await assert.rejects(removeDataset(blobs, "flowers"), DatasetNotFoundError);
  assert.deepEqual(
    (await listDatasets(blobs)).datasets.map((d) => d.name),
    ["reviews"],
  );
  assert.ok((await blobs.list("shard.flowers.")).length === 0);
  await assert.rejects(put(stores, "a.b", flowersUrl, "csv"), /not a valid dataset name/);
});

test("a put that fails midway leaves no manifest and deletes its shards", async () => {
  const inner = await new MemoryStores().blobs(DATASETS_BUCKET);
  const failing = failingOnPut(inner, 4);
  await assert.rejects(
    putDataset(failing, "flowers", "csv", readTable(flowersUrl, "csv"), { fileBytes: 1, limits }),
    /connection lost/,
  );
  assert.deepEqual(await inner.list(), []);
  await assert.rejects(checkStoredDataset(inner, "flowers"), DatasetNotFoundError);
});

test("an incomplete or malformed dataset is refused by the check before any job starts", async () => {
  const stores = new MemoryStores();
  const blobs = await stores.blobs(DATASETS_BUCKET);
  const m = await put(stores, "flowers", flowersUrl, "csv");
  await checkStoredDataset(blobs, "flowers");
  await blobs.delete(m.shards[2]!.name);
  await assert.rejects(checkStoredDataset(blobs, "flowers"), (e: unknown) => {
    assert.ok(e instanceof IncompleteDatasetError);
    assert.match(e.message, /flock:\/\/flowers: 1 of its 8 shards are missing/);
    return true;
  });
  await blobs.put(manifestName("flowers"), new TextEncoder().encode('{"v":1}'));
  await assert.rejects(checkStoredDataset(blobs, "flowers"), /manifest is malformed/);
  await blobs.put(manifestName("flowers"), new TextEncoder().encode("not json"));
  await assert.rejects(checkStoredDataset(blobs, "flowers"), /manifest is not JSON/);
  const listing = await listDatasets(blobs);
  assert.equal(listing.datasets.length, 0);
  assert.equal(listing.warnings.length, 1);
});

test("flock:// loads the very samples file:// loads (CSV with a fraction split; JSONL with a stored test split)", async () => {
  const stores = new MemoryStores();
  await put(stores, "flowers", flowersUrl, "csv");
  await put(stores, "reviews", reviewsUrl, "jsonl");
  await put(stores, "reviews-test", reviewsTestUrl, "jsonl");
  const access = dataAccess(stores, join(dir, "cache-a"));
  const base = { format: "csv", label: "species", test: { fraction: 0.2 } } as const;
  const csvFile = FileDatasetSpec.parse({ ...base, source: flowersUrl });
  const csvStored = FileDatasetSpec.parse({ ...base, source: "flock://flowers" });
  assert.deepEqual(
    await allSamples(csvStored, await fetchStoredSources(csvStored, access)),
    await allSamples(csvFile),
  );
  const text = { format: "jsonl", label: "sentiment", text: "review", features: [], vocabSize: 32 } as const;
  const jsonFile = FileDatasetSpec.parse({ ...text, source: reviewsUrl, test: reviewsTestUrl });
  const jsonStored = FileDatasetSpec.parse({
    ...text,
    source: "flock://reviews",
    test: "flock://reviews-test",
  });
  const fetched = await fetchStoredSources(jsonStored, access);
  assert.deepEqual(Object.keys(fetched ?? {}).sort(), ["flock://reviews", "flock://reviews-test"]);
  assert.deepEqual(await allSamples(jsonStored, fetched), await allSamples(jsonFile));
  // The model says what it was trained on: the uploaded file's own hash.
  const d = await loadDataset(jsonStored, 7, fetched);
  assert.ok(isFileDataset(d));
  assert.equal(d.preprocessing.train.source, "flock://reviews");
  assert.equal(d.preprocessing.train.sha256, readTable(reviewsUrl, "jsonl").sha256);
});

test("the node cache: keyed by hash, a corrupt cached shard is fetched again, a corrupt stored one is refused", async () => {
  const stores = new MemoryStores();
  const blobs = await stores.blobs(DATASETS_BUCKET);
  const m = await put(stores, "flowers", flowersUrl, "csv");
  const cache = join(dir, "cache-b");
  const spec = FileDatasetSpec.parse({ source: "flock://flowers", format: "csv", label: "species" });
  const stored = await fetchStoredSources(spec, dataAccess(stores, cache));
  assert.deepEqual(readdirSync(cache).sort(), m.shards.map((s) => `${s.sha256}.shard`).sort());
  const reference = await allSamples(spec, stored);
  // A cached shard corrupted on disk: the compute side refuses it, the next fetch replaces it.
  writeFileSync(join(cache, `${m.shards[0]!.sha256}.shard`), "garbage\n");
  await assert.rejects(loadDataset(spec, 7, stored), /cached shard .* is missing or corrupt/);
  const again = await fetchStoredSources(spec, dataAccess(stores, cache));
  assert.deepEqual(await allSamples(spec, again), reference);
  // A stored shard whose bytes do not match the manifest: refused, nothing cached under its hash.
  rmSync(cache, { recursive: true });
  const evil = new TextEncoder().encode('[2,{"species":"x"}]\n');
  await blobs.put(m.shards[1]!.name, evil);
  await assert.rejects(fetchStoredSources(spec, dataAccess(stores, cache)), (e: unknown) => {
    assert.ok(e instanceof BadDataError);
    assert.match(e.message, new RegExp(`flock://flowers \\(${m.shards[1]!.name}\\).*sha256`));
    return true;
  });
  assert.ok(!readdirSync(cache).includes(`${m.shards[1]!.sha256}.shard`));
});

test("a spec's format must match the stored dataset's; an unknown name is refused", async () => {
  const stores = new MemoryStores();
  await put(stores, "flowers", flowersUrl, "csv");
  const access = dataAccess(stores, join(dir, "cache-c"));
  const wrong = FileDatasetSpec.parse({ source: "flock://flowers", format: "jsonl", label: "species" });
  await assert.rejects(fetchStoredSources(wrong, access), /stored as csv, the job's dataset says jsonl/);
  const missing = FileDatasetSpec.parse({ source: "flock://nope", format: "csv", label: "species" });
  await assert.rejects(fetchStoredSources(missing, access), DatasetNotFoundError);
  await assert.rejects(fetchStoredSources(missing, undefined), /no object store/);
  assert.equal(await fetchStoredSources("mnist", access), undefined);
});

test("job specs: flock://NAME sources and tests are accepted, bad names refused; only file:// sources are stat'ed", () => {
  const spec = FileDatasetSpec.parse({
    source: "flock://reviews",
    format: "jsonl",
    label: "sentiment",
    test: "flock://reviews-test",
  });
  assert.deepEqual(storedUrls(spec), ["flock://reviews", "flock://reviews-test"]);
  checkFileSources(spec); // nothing local to stat
  assert.deepEqual(
    storedUrls(FileDatasetSpec.parse({ ...spec, source: flowersUrl, test: { fraction: 0.2 } })),
    [],
  );
  assert.throws(
    () =>
      checkFileSources(FileDatasetSpec.parse({ ...spec, source: pathToFileURL(join(dir, "gone.csv")).href })),
    /gone\.csv: cannot be read/,
  );
  for (const bad of ["flock://a.b", "flock://", "flock://../x"])
    assert.match(
      FileDatasetSpec.safeParse({ ...spec, source: bad }).error?.message ?? "",
      /does not name a stored dataset/,
      bad,
    );
});
