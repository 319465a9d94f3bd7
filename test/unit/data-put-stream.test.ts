import { test } from "node:test";
import assert from "node:assert/strict";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { once } from "node:events";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { MemoryStores } from "../../runtime/store/index.js";
import type { BlobStore } from "../../runtime/store/types.js";
import { readTable } from "../../actors/compute/dataset-read.js";
import { buildManifest, decodeShard, type DataManifest } from "../../actors/compute/dataset-shards.js";
import {
  DATASETS_BUCKET,
  DatasetExistsError,
  manifestName,
  putDataset,
} from "../../actors/compute/dataset-store.js";
import { checkJobFits } from "../../actors/job/check.js";
import { parseJobSpec } from "../../actors/job/spec.js";
import { putFileStreamed, putScanned, scanFile } from "../../actors/compute/dataset-put-stream.js";
import { BadDataError } from "../../actors/compute/errors.js";
import { flowersCsv, reviewsJsonl } from "../../examples/data/generate.js";
import { failingOnPut } from "./store-fakes.js";

const dir = mkdtempSync(join(tmpdir(), "flock-put-stream-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const limits = { maxRecords: 37, maxBytes: 2048 };
const now = () => new Date("2026-01-01T00:00:00Z");

/** Every object of a bucket but the shard names' put id, which is random per put. */
async function contents(blobs: BlobStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of await blobs.list()) {
    const bytes = Buffer.from((await blobs.get(name))!).toString("utf8");
    out.set(
      name.replace(/\.[0-9a-f]{8}\./, ".ID."),
      bytes.replace(/(shard\.[^."]+)\.[0-9a-f]{8}\./g, "$1.ID."),
    );
  }
  return out;
}

/** The bucket after an in-memory put (readTable + putDataset) and after a streamed put, of the same file. */
async function bothPuts(path: string, format: "csv" | "jsonl", chunkBytes: number) {
  const memory = await new MemoryStores().blobs(DATASETS_BUCKET);
  const table = readTable(pathToFileURL(path).href, format);
  const fileBytes = readFileSync(path).length;
  const a = await putDataset(memory, "d", format, { ...table, file: path }, { fileBytes, limits, now });
  const streamed = await new MemoryStores().blobs(DATASETS_BUCKET);
  const progress: number[] = [];
  const b = await putFileStreamed(streamed, "d", path, format, {
    limits,
    now,
    chunkBytes,
    onProgress: (p) => progress.push(p.shards),
  });
  return { a, b, memory: await contents(memory), streamed: await contents(streamed), progress };
}

const csvTricky =
  "\uFEFFid, note ,y\n" +
  '1,"a quoted field\nspanning, two lines",yes\n' +
  "\n" +
  '2,"say ""hi""",no\n' +
  "3,ünïcödé ✓,yes\r\n" +
  Array.from(
    { length: 200 },
    (_, i) => `${i + 4},"row ${i}\n${"x".repeat(i % 13)}",${i % 2 ? "yes" : "no"}`,
  ).join("\n") +
  "\n";

const jsonlTricky =
  '{"a":1,"t":"ünï ✓","n":null}\n\n  {"a":2,"t":"x\\ny","deep":{"k":[1,2]}}  \r\n' +
  Array.from({ length: 300 }, (_, i) => JSON.stringify({ a: i, t: "é".repeat(i % 17) })).join("\n");

for (const [name, format, text] of [
  ["tricky.csv", "csv", csvTricky],
  ["flowers.csv", "csv", flowersCsv(400)],
  ["tricky.jsonl", "jsonl", jsonlTricky],
  ["reviews.jsonl", "jsonl", reviewsJsonl(250, 5)],
] as const)
  test(`a streamed put of ${name} stores exactly the bytes of the in-memory put (shards, boundaries, manifest)`, async () => {
    const path = file(name, text);
    for (const chunkBytes of [7, 64 * 1024]) {
      const { a, b, memory, streamed, progress } = await bothPuts(path, format, chunkBytes);
      assert.ok(a.shards.length > 3, `${a.shards.length} shards`);
      assert.deepEqual(streamed, memory);
      assert.deepEqual(
        b.shards.map((s) => [s.first, s.records, s.sha256]),
        a.shards.map((s) => [s.first, s.records, s.sha256]),
      );
      assert.equal(b.file.sha256, readTable(pathToFileURL(path).href, format).sha256);
      assert.deepEqual(
        progress,
        a.shards.map((_, i) => i + 1),
      );
    }
  });

/** A bucket that records every put. */
function recording(inner: BlobStore, puts: string[]): BlobStore {
  return {
    ...inner,
    put: (n, d) => (puts.push(n), inner.put(n, d)),
    get: (n) => inner.get(n),
    list: (p) => inner.list(p),
    delete: (n) => inner.delete(n),
  };
}

for (const [name, format, text, pattern] of [
  [
    "ragged.csv",
    "csv",
    "a,b\n1,2\n".repeat(1) + "3,4\n".repeat(300) + "5\n6,7\n",
    /ragged\.csv: line 303: ragged row/,
  ],
  ["dup.csv", "csv", "a,a\n1,2\n", /dup\.csv: line 1, field "a": appears twice in the header/],
  ["quote.csv", "csv", 'a,b\n1,2\n3,"open\n', /quote\.csv.*is not valid CSV/],
  ["empty.csv", "csv", "", /empty\.csv: has no header row|empty\.csv: has no records/],
  ["header.csv", "csv", "a,b\n", /header\.csv: has no records/],
  [
    "badjson.jsonl",
    "jsonl",
    '{"a":1}\n'.repeat(400) + "{nope\n",
    /badjson\.jsonl: line 401: is not valid JSON/,
  ],
  ["array.jsonl", "jsonl", '{"a":1}\n\n[1,2]\n', /array\.jsonl: line 3: is not a JSON object/],
] as const)
  test(`pass 1 refuses ${name} with readTable's message, and nothing is uploaded`, async () => {
    const path = file(name, text);
    const puts: string[] = [];
    const blobs = recording(await new MemoryStores().blobs(DATASETS_BUCKET), puts);
    let message = "";
    await assert.rejects(
      putFileStreamed(blobs, "d", path, format, {
        limits: { maxRecords: 10, maxBytes: 1 << 20 },
        chunkBytes: 16,
      }),
      (e: unknown) => {
        assert.ok(e instanceof BadDataError, String(e));
        message = e.message;
        return true;
      },
    );
    assert.match(message, pattern);
    assert.deepEqual(puts, []);
    if (!/has no records/.test(message))
      assert.throws(
        () => readTable(pathToFileURL(path).href, format),
        (e: unknown) => e instanceof Error && e.message === message,
      );
  });

test("a missing file and a folder are refused as readTable's are", async () => {
  await assert.rejects(scanFile(join(dir, "nope.csv"), "csv"), /nope\.csv: cannot be read: ENOENT/);
  await assert.rejects(scanFile(dir, "csv"), /is not a regular file/);
});

test("a file that changes between the passes is refused and its shards are deleted", async () => {
  const path = file("changing.csv", flowersCsv(300));
  const inner = await new MemoryStores().blobs(DATASETS_BUCKET);
  const scan = await scanFile(path, "csv", { limits });
  writeFileSync(path, flowersCsv(300).replace(/\n([^\n]*)\n$/, "\n9,9,9,9,setosa\n"));
  await assert.rejects(putScanned(inner, "d", scan), /did the file change|file changed/);
  assert.deepEqual(await inner.list(), []);
  writeFileSync(path, `${flowersCsv(300)}\n\n`); // same records, other bytes: the file hash differs
  const rescan = await scanFile(path, "csv", { limits });
  writeFileSync(path, flowersCsv(300));
  await assert.rejects(putScanned(inner, "d", rescan), /the file changed while it was being put/);
  assert.deepEqual(await inner.list(), []);
});

test("an upload that fails midway deletes its shards; a taken name is refused before any upload", async () => {
  const path = file("fail.csv", flowersCsv(300));
  const inner = await new MemoryStores().blobs(DATASETS_BUCKET);
  const failing = failingOnPut(inner, 3);
  await assert.rejects(putFileStreamed(failing, "d", path, "csv", { limits }), /connection lost/);
  assert.deepEqual(await inner.list(), []);
  await putFileStreamed(inner, "d", path, "csv", { limits });
  const before = await inner.list();
  await assert.rejects(putFileStreamed(inner, "d", path, "csv", { limits }), DatasetExistsError);
  assert.deepEqual(await inner.list(), before);
});

/** Live heap bytes after a full collection (the flag is set at run time: `node --test` runs this file as it is). */
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const liveHeap = (): number => (gc(), process.memoryUsage().heapUsed);

test("300 000 records (past the in-memory limit) are put holding about one shard: the manifest tiles them", async (t) => {
  const path = join(dir, "big.csv");
  const out = createWriteStream(path);
  out.write("f1,f2,label\n");
  for (let i = 0; i < 300_000; i++) {
    if (!out.write(`${i % 97},${(i * 7) % 89},${i % 2 ? "b" : "a"}\n`)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
  assert.throws(() => readTable(pathToFileURL(path).href, "csv"), /more than 200000 records/);
  // A store that keeps only the last shard: what the put itself holds is then all that grows.
  const names: string[] = [];
  let lastShard: Uint8Array = new Uint8Array();
  const store: BlobStore = {
    get: () => Promise.resolve(undefined),
    list: () => Promise.resolve([...names]),
    delete: () => Promise.resolve(),
    put: (n, d) => (names.push(n), n.startsWith("shard.") && (lastShard = d), Promise.resolve()),
  };
  const base = liveHeap();
  let peak = 0;
  let calls = 0;
  const sample = (): void => {
    if (++calls % 8 === 0) peak = Math.max(peak, liveHeap() - base);
  };
  const limits = { maxRecords: 50_000, maxBytes: 256 * 1024 };
  const scan = await scanFile(path, "csv", { limits, onScan: sample });
  const m: DataManifest = await putScanned(store, "big", scan, { onProgress: sample });
  // 300 000 records held whole would be tens of MiB (the file alone is 3.6 MiB, its shards 13 MiB).
  t.diagnostic(
    `live heap above the start, at most: ${(peak / 2 ** 20).toFixed(1)} MiB over ${calls} samples`,
  );
  assert.ok(calls > 40, `${calls} samples`);
  assert.ok(peak < 6 * 2 ** 20, `the put held ${(peak / 2 ** 20).toFixed(1)} MiB`);
  assert.equal(m.records, 300_000);
  assert.deepEqual(m.columns, ["f1", "f2", "label"]);
  assert.ok(m.shards.length >= 40, `${m.shards.length} shards`);
  assert.ok(m.shards.every((s) => s.bytes < 256 * 1024 + 64));
  assert.deepEqual(names, [...m.shards.map((s) => s.name), "manifest.big"]);
  const records = decodeShard("big", lastShard, m.shards.at(-1)!.records);
  assert.equal(records.length, m.shards.at(-1)!.records);
  assert.equal(m.file.bytes, readFileSync(path).length);
});

test("a job without stream: true on a stored dataset past the whole-load limits is refused naming the dataset and the remedy", async () => {
  const stores = new MemoryStores();
  const blobs = await stores.blobs(DATASETS_BUCKET);
  const store = async (name: string, records: number) => {
    const summary = { first: 0, records, bytes: 10, sha256: "a".repeat(64) };
    const table = { file: `/x/${name}.csv`, columns: ["f", "y"], sha256: "b".repeat(64) };
    const m = buildManifest(name, "csv", table, 100, [summary], (i) => `shard.${name}.00000000.${i}`, now());
    await blobs.put(manifestName(name), new TextEncoder().encode(JSON.stringify(m)));
  };
  await store("huge", 200_001);
  await store("small", 200_000);
  const job = (source: string, extra: Record<string, unknown> = {}) =>
    parseJobSpec({
      model: "mlp",
      dataset: { source, format: "csv", label: "y", ...extra },
      epochs: 1,
      globalBatch: 8,
      optimizer: { name: "sgd", lr: 0.1 },
    });
  await assert.rejects(checkJobFits(job("flock://huge"), stores), (e: unknown) => {
    assert.ok(e instanceof BadDataError);
    assert.match(e.message, /^flock:\/\/huge: holds 200001 records .*more than a job loads whole/);
    assert.match(e.message, /set "stream": true in the job's dataset/);
    return true;
  });
  await assert.rejects(
    checkJobFits(job("flock://small", { test: "flock://huge" }), stores),
    /^BadDataError: flock:\/\/huge: holds 200001/,
  );
  // Within the limits, and streamed past them, the check goes on to the shards (absent here).
  await assert.rejects(checkJobFits(job("flock://small"), stores), /shards are missing/);
  await assert.rejects(
    checkJobFits(job("flock://huge", { stream: true }), stores),
    /shards are missing|missing from the store/,
  );
});
