/**
 * A streamed dataset (`stream: true`) on a real nats-server with two daemons, each with its own
 * shard cache (its own TMPDIR): a CSV stored in 80 shards trains to a sensible accuracy, the
 * ledger is exactly once, and each node's cache holds only the training shards its ranges
 * needed — fewer than all 72 (the other 8 are the whole-shard test split, fetched by the
 * evaluator's node only).
 */
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import type { TrainResult } from "../../actors/api.js";
import { readTable } from "../../actors/compute/dataset-read.js";
import { cutShards } from "../../actors/compute/dataset-shards.js";
import { FileDatasetSpec } from "../../actors/compute/dataset-spec.js";
import { splitSeed } from "../../actors/compute/dataset-file.js";
import { streamLayout } from "../../actors/compute/dataset-stream-layout.js";
import { registerCleanup, scaleTimeout, spawnChild, useNatsServer, type HasAfter } from "../helpers/index.js";
import { FLOCK, exitWithin } from "./cluster-kit.js";
import { dense } from "../../actors/compute/model-zoo.js";

const CLUSTER = "st";
const SEED = 5;
const SHARD_RECORDS = 25;
const dir = mkdtempSync(join(tmpdir(), "flock-stream-it-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** 2000 rows: 3 well-separated classes in 4 features (a deterministic generator). */
function blobsCsv(n: number): string {
  let s = 12345;
  const rand = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5;
  const rows = ["f1,f2,f3,f4,kind"];
  for (let i = 0; i < n; i++) {
    const k = (i * 7) % 3;
    const c = [k * 3, (2 - k) * 2, k === 1 ? 4 : 0, 1];
    rows.push(`${c.map((v) => (v + rand() * 5).toFixed(3)).join(",")},kind-${k}`);
  }
  return `${rows.join("\n")}\n`;
}

/** Runs `flock ...args` to its end; exit code, all output, stdout. */
async function flock(t: HasAfter, args: string[], limitMs = 60_000) {
  const child = registerCleanup(
    t,
    spawnChild(process.execPath, [FLOCK, ...args], { name: `flock ${args[0]}` }),
  );
  const code = await exitWithin(child, scaleTimeout(limitMs));
  return { code, out: child.output(), stdout: child.stdout() };
}

/** A daemon whose shard cache is `<tmp>/flock-data-cache` (os.tmpdir() follows TMPDIR). */
async function daemon(t: HasAfter, url: string, id: string, tmp: string): Promise<void> {
  mkdirSync(tmp, { recursive: true });
  const args = [FLOCK, "daemon", "--nats", url, "--node-id", id, "--cluster", CLUSTER, "--log-level", "warn"];
  const proc = registerCleanup(
    t,
    spawnChild(process.execPath, args, { name: `daemon ${id}`, env: { TMPDIR: tmp } }),
  );
  await proc.waitForLine(new RegExp(`^flock daemon ${id} ready`), scaleTimeout(20_000));
}

const cached = (tmp: string): string[] => {
  const cache = join(tmp, "flock-data-cache");
  return existsSync(cache)
    ? readdirSync(cache).flatMap((f) => /^([0-9a-f]{64})\.shard$/.exec(f)?.[1] ?? [])
    : [];
};

test(
  "a streamed flock:// dataset trains on two nodes, each caching only the shards its ranges needed",
  { timeout: scaleTimeout(120_000) },
  async (t) => {
    const server = await useNatsServer(t, { jetstream: true });
    const nats = ["--nats", server.url, "--cluster", CLUSTER];
    const tmps = { a: join(dir, "a"), b: join(dir, "b") };
    await daemon(t, server.url, "a", tmps.a);
    await daemon(t, server.url, "b", tmps.b);
    const csv = join(dir, "blobs.csv");
    writeFileSync(csv, blobsCsv(2000));
    const put = await flock(t, [
      "data",
      "put",
      csv,
      "--name",
      "blobs",
      "--shard-records",
      `${SHARD_RECORDS}`,
      ...nats,
    ]);
    assert.equal(put.code, 0, put.out);

    // The shards as `data put` cut them (same code, same file): which are training, which test.
    const dataset = {
      source: "flock://blobs",
      format: "csv",
      label: "kind",
      test: { fraction: 0.1 },
      stream: true,
    };
    const shards = cutShards(readTable(pathToFileURL(csv).href, "csv").records, {
      maxRecords: SHARD_RECORDS,
      maxBytes: 1 << 20,
    }).map((s, i) => ({
      name: `s${i}`,
      first: s.first,
      records: s.records,
      bytes: s.bytes.length,
      sha256: s.sha256,
    }));
    const layout = streamLayout(
      FileDatasetSpec.parse(dataset),
      { "flock://blobs": { shards } },
      splitSeed(SEED),
    );
    const train = new Set(layout.train.refs.map((r) => r.shard.sha256));
    const testShards = new Set("refs" in layout.test ? layout.test.refs.map((r) => r.shard.sha256) : []);
    assert.deepEqual([shards.length, train.size, testShards.size], [80, 72, 8]);

    const job = {
      name: "blobs-stream",
      model: {
        class_name: "Sequential",
        config: {
          name: "blobs-mlp",
          layers: [dense("hidden", 16, "relu", 4), dense("logits", 3, "linear")],
        },
      },
      dataset,
      epochs: 1,
      globalBatch: 32,
      // Leases of 8 batches (~5 shards): each node's ranges then fall in part of the shards.
      prefetch: 8,
      optimizer: { name: "adam", lr: 0.02 },
      minWorkers: 2,
      maxWorkers: 2,
      evalEvery: 20,
    };
    const file = join(dir, "job.json");
    writeFileSync(file, JSON.stringify(job));

    // Bad data in a shard is refused by the submitter's pass, naming shard, line and field;
    // stream on a file:// source is a spec error. Exit non-zero, no job started.
    const bad = join(dir, "bad.csv");
    writeFileSync(
      bad,
      blobsCsv(300).replace(/\n([^\n]*)\n/g, (m, row: string, at: number) =>
        at > 5000 && at < 5100 ? `\n${row.replace(/^[^,]*/, "oops")}\n` : m,
      ),
    );
    const badPut = await flock(t, ["data", "put", bad, "--name", "bad", "--shard-records", "25", ...nats]);
    assert.equal(badPut.code, 0, badPut.out);
    const refused = async (name: string, data: Record<string, unknown>, re: RegExp): Promise<void> => {
      const jobPath = join(dir, `${name}.json`);
      writeFileSync(jobPath, JSON.stringify({ ...job, name, dataset: { ...dataset, ...data } }));
      const r = await flock(t, ["train", jobPath, "--json", "--no-report", ...nats]);
      assert.notEqual(r.code, 0, r.out);
      assert.match(r.out, re);
    };
    await refused(
      "bad-data",
      { source: "flock://bad" },
      /flock:\/\/bad \(shard\.bad\.\w+\.\d+\): line \d+.*f1.*"oops" is not a number/,
    );
    await refused(
      "bad-source",
      { source: pathToFileURL(csv).href },
      /stream: true reads a stored dataset shard by shard/,
    );
    const jobs = await flock(t, ["jobs", "--json", ...nats]);
    assert.deepEqual(
      (JSON.parse(jobs.stdout.trim().split("\n").at(-1) ?? "") as { jobs: unknown[] }).jobs,
      [],
      "nothing started",
    );
    const out = join(dir, "model");
    const run = await flock(
      t,
      ["train", file, "--seed", `${SEED}`, "--out", out, "--json", "--no-report", ...nats],
      90_000,
    );
    assert.equal(run.code, 0, run.out);
    const result = JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "") as TrainResult;
    assert.equal(result.status, "completed");
    assert.ok(result.ledgerAudit.exact, JSON.stringify(result.ledgerAudit));
    assert.deepEqual(result.samplesPerEpoch, [1800]);
    assert.deepEqual(result.members.sort(), ["a", "b"]);
    assert.ok(result.accuracy >= 0.85, `accuracy ${result.accuracy}`);

    // The export records the profile's preprocessing; predicting with it scores as the evaluator did.
    const info = JSON.parse(readFileSync(join(out, "flock.json"), "utf8")) as {
      preprocessing: { classes: string[]; features: { name: string }[]; train: { records: number } };
    };
    assert.deepEqual(info.preprocessing.classes, ["kind-0", "kind-1", "kind-2"]);
    assert.deepEqual(
      info.preprocessing.features.map((f) => f.name),
      ["f1", "f2", "f3", "f4"],
    );
    assert.equal(info.preprocessing.train.records, 1800);
    const predict = await flock(t, ["predict", out, csv, "--json"]);
    assert.equal(predict.code, 0, predict.out);
    const predicted = JSON.parse(predict.stdout.trim().split("\n").at(-1) ?? "") as {
      accuracy: number;
      records: number;
    };
    assert.equal(predicted.records, 2000);
    assert.ok(predicted.accuracy >= 0.85, `predict accuracy ${predicted.accuracy}`);

    const byNode = Object.entries(tmps).map(([id, tmp]) => {
      const held = cached(tmp);
      const strays = held.filter((h) => !train.has(h) && !testShards.has(h));
      assert.deepEqual(strays, [], `${id} holds only this dataset's shards`);
      return { id, train: held.filter((h) => train.has(h)), test: held.filter((h) => testShards.has(h)) };
    });
    t.diagnostic(
      `accuracy ${result.accuracy} in ${result.steps} steps (predict on all 2000: ${predicted.accuracy}); ` +
        "training shards cached: " +
        byNode.map((n) => `${n.id} ${n.train.length}/72 (+${n.test.length} test)`).join(", "),
    );
    for (const n of byNode)
      assert.ok(n.train.length < 72, `${n.id} cached ${n.train.length} of 72 training shards`);
    const union = new Set(byNode.flatMap((n) => n.train));
    assert.equal(union.size, 72, "every training shard was needed by some node");
    assert.equal(
      new Set(byNode.flatMap((n) => n.test)).size,
      8,
      "the evaluator's node fetched the test split",
    );
  },
);
