/**
 * Image folders in the cluster's object store (actors/compute/dataset-images-store.ts): a folder
 * put as a stored dataset loads as exactly the dataset the folder loads (same samples at the same
 * indices, same split for a seed, same digest), with a fraction split and with a stored test
 * folder; a bad folder is refused by the put-side check with the loader's own messages; stored
 * records that are not a put's (out of order, malformed, tampered) are refused naming the URL.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { MemoryStores } from "../../runtime/store/index.js";
import {
  checkImageFolder,
  loadImageDataset,
  type ImageDataset,
} from "../../actors/compute/dataset-images.js";
import { IMAGE_COLUMNS, imageTable } from "../../actors/compute/dataset-images-store.js";
import { DatasetSpec } from "../../actors/compute/dataset-spec.js";
import type { ImageDatasetSpec } from "../../actors/compute/dataset-images-spec.js";
import { DATASETS_BUCKET, listDatasets, putDataset } from "../../actors/compute/dataset-store.js";
import {
  dataAccess,
  fetchStoredSources,
  type StoredSources,
} from "../../actors/compute/dataset-store-cache.js";
import { cutShards, buildManifest, DataManifest } from "../../actors/compute/dataset-shards.js";
import { loadDataset } from "../../actors/compute/datasets.js";
import { BadDataError } from "../../actors/compute/errors.js";
import { encodeImage, writeShapes } from "../fixtures/synthetic-images.js";

const root = mkdtempSync(join(tmpdir(), "flock-images-store-"));
test.after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);
const url = (p: string) => pathToFileURL(p).href;
const limits = { maxRecords: 7, maxBytes: 1 << 20 };

/** Puts a folder as dataset `name` into `stores` (the CLI's path: checked, then records). */
async function putFolder(stores: MemoryStores, name: string, dir: string) {
  const folder = checkImageFolder(dir);
  const blobs = await stores.blobs(DATASETS_BUCKET);
  return putDataset(blobs, name, "images", imageTable(folder), { fileBytes: folder.bytes, limits });
}

/** Every sample of both splits, the sizes and the preprocessing less the sources (which name the URL). */
function everything(d: ImageDataset) {
  const all = (k: number) => Array.from({ length: k }, (_, i) => i);
  const { train, test, ...rest } = d.preprocessing;
  return {
    train: d.trainBatch(all(d.trainSize)),
    test: d.testBatch(all(d.testSize)),
    shape: d.inputShape,
    rest,
    digests: [train.sha256, train.records, test.sha256, test.records, test.fraction, test.seed],
  };
}

const load = async (spec: ImageDatasetSpec, seed: number, stored?: StoredSources) => {
  const d = await loadDataset(spec, seed, stored);
  assert.ok("preprocessing" in d);
  return d as ImageDataset;
};

test("a stored image folder loads as exactly the folder's dataset: samples, indices, split and digest", async () => {
  const stores = new MemoryStores();
  const dir = writeShapes(fresh(), 12, 5);
  const m = await putFolder(stores, "shapes", dir);
  assert.equal(m.format, "images");
  assert.equal(m.records, 24, "records are images");
  assert.equal(m.shards.length, 4, "7 images a shard");
  assert.deepEqual(m.columns, IMAGE_COLUMNS);
  assert.equal(m.file.name, dir.slice(dir.lastIndexOf("/") + 1));
  const listed = await listDatasets(await stores.blobs(DATASETS_BUCKET));
  assert.deepEqual(
    listed.datasets.map((d) => [d.name, d.format, d.records]),
    [["shapes", "images", 24]],
  );
  const base = { format: "images", size: [8, 8], channels: 1, test: { fraction: 0.25 } } as const;
  const fileSpec = DatasetSpec.parse({ ...base, source: url(dir) });
  const storedSpec = DatasetSpec.parse({ ...base, source: "flock://shapes" });
  assert.ok(typeof fileSpec !== "string" && fileSpec.format === "images");
  assert.ok(typeof storedSpec !== "string" && storedSpec.format === "images");
  assert.match(
    JSON.stringify(DatasetSpec.safeParse({ source: "flock://no.dots", format: "images" }).error?.issues),
    /does not name a stored dataset/,
  );
  const stored = await fetchStoredSources(storedSpec, dataAccess(stores, join(root, "cache")));
  for (const seed of [3, 4]) {
    const fromFolder = await load(fileSpec, seed);
    const fromStore = await load(storedSpec, seed, stored);
    assert.deepEqual(everything(fromStore), everything(fromFolder), `seed ${seed}`);
    assert.equal(fromStore.preprocessing.train.source, "flock://shapes");
    assert.equal(
      fromStore.preprocessing.train.sha256,
      m.file.sha256,
      "the manifest records the folder's digest",
    );
  }
  // Without a size the first image's (24×24, RGB) is used, from the store as from the folder.
  const unsized = { format: "images", test: { fraction: 0.5 } } as const;
  assert.deepEqual(
    everything(loadImageDataset({ ...unsized, source: "flock://shapes" }, 1, stored)),
    everything(loadImageDataset({ ...unsized, source: url(dir) }, 1)),
  );
});

test("a stored test folder keeps the training classes' order, as a test folder does", async () => {
  const stores = new MemoryStores();
  const train = writeShapes(fresh(), 6, 1);
  const testDir = writeShapes(fresh(), 3, 2);
  await putFolder(stores, "train", train);
  await putFolder(stores, "held-out", testDir);
  const base = { format: "images", size: [6, 6], channels: 3 } satisfies Omit<ImageDatasetSpec, "source">;
  const stored = DatasetSpec.parse({ ...base, source: "flock://train", test: "flock://held-out" });
  assert.ok(typeof stored !== "string" && stored.format === "images");
  const fetched = await fetchStoredSources(stored, dataAccess(stores, join(root, "cache")));
  assert.deepEqual(Object.keys(fetched ?? {}).sort(), ["flock://held-out", "flock://train"]);
  const a = everything(await load(stored, 0, fetched));
  const b = everything(await load({ ...base, source: url(train), test: url(testDir) }, 0));
  assert.deepEqual(a, b);
  assert.deepEqual(Array.from(a.test.y), [0, 0, 0, 1, 1, 1]);
});

test("the put-side check refuses a bad folder with the loader's messages, before any record is made", () => {
  const named = (path: string, what: RegExp) => (e: unknown) =>
    e instanceof BadDataError && e.message.startsWith(path) && what.test(e.message);
  const empty = writeShapes(fresh(), 2, 1);
  mkdirSync(join(empty, "cat"));
  assert.throws(() => checkImageFolder(empty), named(join(empty, "cat"), /holds no images/));
  const corrupt = writeShapes(fresh(), 2, 1);
  // Not the first image: every image is decoded at put, not only the one a size comes from.
  writeFileSync(join(corrupt, "disc", "0001.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
  assert.throws(
    () => checkImageFolder(corrupt),
    named(join(corrupt, "disc", "0001.jpg"), /cannot be decoded as JPEG/),
  );
  const text = writeShapes(fresh(), 2, 1);
  writeFileSync(join(text, "bar", "notes.txt"), "not an image\n");
  assert.throws(
    () => checkImageFolder(text),
    named(join(text, "bar", "notes.txt"), /neither a PNG nor a JPEG/),
  );
  const none = fresh();
  mkdirSync(none);
  assert.throws(() => checkImageFolder(none), named(none, /0 class folder\(s\); at least 2/));
  const single = fresh();
  mkdirSync(join(single, "only"), { recursive: true });
  writeFileSync(join(single, "only", "a.png"), encodeImage("png", new Uint8Array(64).fill(200), 4, 4));
  assert.throws(() => checkImageFolder(single), named(single, /1 class folder\(s\); at least 2/));
  const stray = writeShapes(fresh(), 2, 1);
  writeFileSync(join(stray, "labels.csv"), "x\n");
  assert.throws(() => checkImageFolder(stray), named(join(stray, "labels.csv"), /is not a class folder/));
  assert.throws(
    () => checkImageFolder(join(root, "missing")),
    named(join(root, "missing"), /cannot be read/),
  );
});

/** Stores hand-made records as dataset `name` (what a hostile submitter could write) and loads it. */
async function loadRecords(values: Record<string, unknown>[], sha256 = "0".repeat(64)) {
  const stores = new MemoryStores();
  const blobs = await stores.blobs(DATASETS_BUCKET);
  const records = values.map((v, i) => ({ line: i + 1, values: v }));
  const table = { file: "/x/bad", columns: IMAGE_COLUMNS, records, sha256 };
  const shards = cutShards(records);
  const manifest = buildManifest("bad", "images", table, 1, shards, (i) => `shard.bad.p.${i}`, new Date(0));
  for (const [i, s] of shards.entries()) await blobs.put(`shard.bad.p.${i}`, s.bytes);
  await blobs.put("manifest.bad", new TextEncoder().encode(JSON.stringify(DataManifest.parse(manifest))));
  const spec: ImageDatasetSpec = {
    source: "flock://bad",
    format: "images",
    size: [4, 4],
    test: { fraction: 0.5 },
  };
  const stored = await fetchStoredSources(spec, dataAccess(stores, join(root, "cache")));
  return () => loadImageDataset(spec, 0, stored);
}

test("stored records that no put wrote are refused, named by the URL", async () => {
  const png = (v: number) => encodeImage("png", new Uint8Array(64).fill(v), 4, 4).toString("base64");
  const good = [
    { class: "a", file: "1.png", data: png(10) },
    { class: "a", file: "2.png", data: png(20) },
    { class: "b", file: "1.png", data: png(30) },
    { class: "b", file: "2.png", data: png(40) },
  ];
  const swapped = [good[1]!, good[0]!, good[2]!, good[3]!];
  assert.throws(
    await loadRecords(swapped),
    /flock:\/\/bad: line 2: the stored image a\/1\.png is out of folder order/,
  );
  const twice = [good[0]!, good[0]!, good[2]!, good[3]!];
  assert.throws(await loadRecords(twice), /out of folder order/);
  const escape = [{ ...good[0]!, file: "../../etc/passwd" }, ...good.slice(1)];
  assert.throws(await loadRecords(escape), /flock:\/\/bad: line 1: is not a stored image/);
  const extra = [{ ...good[0]!, label: 3 }, ...good.slice(1)];
  assert.throws(await loadRecords(extra), /is not a stored image/);
  const junk = [...good.slice(0, 3), { ...good[3]!, data: Buffer.from("GIF89a").toString("base64") }];
  assert.throws(
    await loadRecords(junk),
    /^BadDataError: flock:\/\/bad\/b\/2\.png: is neither a PNG nor a JPEG/,
  );
  assert.throws(
    await loadRecords(good),
    /flock:\/\/bad: its images digest to [0-9a-f]{64}, its manifest says 0{64}/,
  );
  // A manifest past the image count limit is refused before any record is decoded.
  const stores = new MemoryStores();
  await putFolder(stores, "many", writeShapes(fresh(), 2, 1));
  const fetched = await fetchStoredSources(
    { source: "flock://many", format: "images" },
    dataAccess(stores, join(root, "cache")),
  );
  const source = fetched?.["flock://many"];
  assert.ok(source);
  const huge = { "flock://many": { ...source, manifest: { ...source.manifest, records: 50_001 } } };
  assert.throws(
    () => loadImageDataset({ source: "flock://many", format: "images" }, 0, huge),
    /flock:\/\/many: holds more than 50000 images \(the limit\)/,
  );
  const oneClass = good.slice(0, 2);
  assert.throws(await loadRecords(oneClass), /flock:\/\/bad: has 1 class folder\(s\); at least 2/);
});
