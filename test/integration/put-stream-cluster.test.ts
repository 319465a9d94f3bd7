/**
 * A CSV past the whole-file limits (more than `DATA_LIMITS.records` rows) on a real nats-server
 * with two daemons: `flock data put` streams it into the store; a job without `stream: true` on
 * it is refused by the submitter's check, saying to stream, and nothing starts; a `stream: true`
 * job on it trains on both nodes to a sensible accuracy with an exact ledger.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { TrainResult } from "../../actors/api.js";
import { scanFile } from "../../actors/compute/dataset-put-stream.js";
import { DEFAULT_SHARD_LIMITS } from "../../actors/compute/dataset-shards.js";
import { DATA_LIMITS, FileDatasetSpec } from "../../actors/compute/dataset-spec.js";
import { splitSeed } from "../../actors/compute/dataset-file.js";
import { streamLayout } from "../../actors/compute/dataset-stream-layout.js";
import { registerCleanup, scaleTimeout, spawnChild, useNatsServer, type HasAfter } from "../helpers/index.js";
import { FLOCK, exitWithin } from "./cluster-kit.js";
import { dense } from "../../actors/compute/model-zoo.js";

const CLUSTER = "ps";
const SEED = 3;
const ROWS = DATA_LIMITS.records + 10_000;
const dir = mkdtempSync(join(tmpdir(), "flock-put-stream-it-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** `n` rows of 2 features and 2 classes split by the sign of f1 + f2 (deterministic), written as a stream. */
async function writeCsv(path: string, n: number): Promise<void> {
  let s = 777;
  const rand = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5;
  const out = createWriteStream(path);
  out.write("f1,f2,side\n");
  for (let i = 0; i < n; i++) {
    const [a, b] = [rand() * 4, rand() * 4];
    if (!out.write(`${a.toFixed(2)},${b.toFixed(2)},${a + b > 0 ? "up" : "down"}\n`))
      await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
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

async function daemon(t: HasAfter, url: string, id: string): Promise<void> {
  const tmp = join(dir, id);
  mkdirSync(tmp, { recursive: true });
  const args = [FLOCK, "daemon", "--nats", url, "--node-id", id, "--cluster", CLUSTER, "--log-level", "warn"];
  const proc = registerCleanup(
    t,
    spawnChild(process.execPath, args, { name: `daemon ${id}`, env: { TMPDIR: tmp } }),
  );
  await proc.waitForLine(new RegExp(`^flock daemon ${id} ready`), scaleTimeout(20_000));
}

const lastJson = (stdout: string): unknown => JSON.parse(stdout.trim().split("\n").at(-1) ?? "");

test(
  "a CSV past the whole-file limits is put streaming; a whole-load job on it is refused; a streamed one trains",
  { timeout: scaleTimeout(150_000) },
  async (t) => {
    const server = await useNatsServer(t, { jetstream: true });
    const nats = ["--nats", server.url, "--cluster", CLUSTER];
    await daemon(t, server.url, "a");
    await daemon(t, server.url, "b");
    const csv = join(dir, "big.csv");
    await writeCsv(csv, ROWS);

    const put = await flock(t, ["data", "put", csv, "--name", "big", "--json", ...nats], 90_000);
    assert.equal(put.code, 0, put.out);
    const stored = lastJson(put.stdout) as {
      records: number;
      shards: number;
      file: { sha256: string; bytes: number };
    };
    assert.equal(stored.records, ROWS);
    assert.equal(stored.file.sha256, createHash("sha256").update(readFileSync(csv)).digest("hex"));
    assert.match(
      put.out,
      new RegExp(`flock: uploading flock://big: shard ${stored.shards}/${stored.shards} .* 100%`),
    );

    // The shards `data put` cut (same code, same file, streamed): which are training, which test.
    const dataset = { source: "flock://big", format: "csv", label: "side", test: { fraction: 0.1 } };
    const scan = await scanFile(csv, "csv", { limits: DEFAULT_SHARD_LIMITS });
    assert.equal(scan.shards.length, stored.shards);
    const shards = scan.shards.map((s, i) => ({ ...s, name: `s${i}` }));
    const layout = streamLayout(
      FileDatasetSpec.parse({ ...dataset, stream: true }),
      { "flock://big": { shards } },
      splitSeed(SEED),
    );

    const job = {
      model: {
        class_name: "Sequential",
        config: {
          name: "side-mlp",
          layers: [dense("hidden", 8, "relu", 2), dense("logits", 2, "linear")],
        },
      },
      epochs: 1,
      globalBatch: 4096,
      optimizer: { name: "adam", lr: 0.05 },
      minWorkers: 2,
      maxWorkers: 2,
      evalEvery: 20,
    };
    const whole = join(dir, "whole.json");
    writeFileSync(whole, JSON.stringify({ ...job, name: "whole", dataset }));
    const refused = await flock(t, ["train", whole, "--json", "--no-report", ...nats]);
    assert.notEqual(refused.code, 0, refused.out);
    assert.match(refused.out, new RegExp(`flock://big: holds ${ROWS} records .*more than a job loads whole`));
    assert.match(refused.out, /set "stream": true in the job's dataset/);
    const jobs = await flock(t, ["jobs", "--json", ...nats]);
    assert.deepEqual((lastJson(jobs.stdout) as { jobs: unknown[] }).jobs, [], "nothing started");

    const streamed = join(dir, "streamed.json");
    writeFileSync(
      streamed,
      JSON.stringify({ ...job, name: "streamed", dataset: { ...dataset, stream: true } }),
    );
    const run = await flock(
      t,
      ["train", streamed, "--seed", `${SEED}`, "--json", "--no-report", ...nats],
      90_000,
    );
    assert.equal(run.code, 0, run.out);
    const result = lastJson(run.stdout) as TrainResult;
    assert.equal(result.status, "completed");
    assert.ok(result.ledgerAudit.exact, JSON.stringify(result.ledgerAudit));
    assert.deepEqual(result.samplesPerEpoch, [layout.train.records]);
    assert.ok(layout.train.records > DATA_LIMITS.records * 0.85, `${layout.train.records} training records`);
    assert.deepEqual(result.members.sort(), ["a", "b"]);
    assert.ok(result.accuracy >= 0.9, `accuracy ${result.accuracy}`);
    t.diagnostic(
      `${ROWS} records in ${stored.shards} shards (${layout.train.records} training); ` +
        `accuracy ${result.accuracy} in ${result.steps} steps; put ${JSON.stringify((lastJson(put.stdout) as { wallSeconds: number }).wallSeconds)} s`,
    );
  },
);
