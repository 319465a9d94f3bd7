/**
 * Datasets in the cluster against a real nats-server (JetStream) and a daemon as a child process:
 * bad files are refused by `flock data put` with the file and line, exit 1, and nothing uploaded;
 * the example CSV and JSONL files are stored in shards and listed; the flowers job and the
 * reviews job train from flock:// sources to exactly the accuracy the same job reaches from the
 * same files (one worker, same seed: the same samples in the same order, so the same steps);
 * `flock data rm` removes a dataset, and a job on it is then refused before it starts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { test } from "node:test";
import type { TrainResult } from "../../actors/api.js";
import type { PutResult } from "../../tools/cli/data.js";
import { scaleTimeout, useNatsServer, type HasAfter } from "../helpers/index.js";
import { lastJsonLine, runFlock, startDaemon, type FlockRun } from "./cluster-kit.js";

const CLUSTER = "ds";
const root = fileURLToPath(new URL("../../../", import.meta.url));
const examples = join(root, "examples");
const dir = mkdtempSync(join(tmpdir(), "flock-data-store-it-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

type Run = FlockRun;
const flock = (t: HasAfter, args: string[], limitMs = 60_000): Promise<Run> => runFlock(t, args, limitMs);
const lastJson = <T>(run: Run): T => lastJsonLine<T>(run.stdout);

/** A copy of an example job with its dataset's sources replaced, written to the temp folder. */
function jobFile(example: string, name: string, dataset: Record<string, unknown>): string {
  const job = JSON.parse(readFileSync(join(examples, `${example}.json`), "utf8")) as { dataset: object };
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ ...job, name, dataset: { ...job.dataset, ...dataset } }));
  return path;
}

test(
  "flock data put|ls|rm, bad data refused before upload, and flock:// jobs train exactly as file:// ones",
  { timeout: scaleTimeout(420_000) },
  async (t) => {
    const server = await useNatsServer(t, { jetstream: true });
    const nats = ["--nats", server.url, "--cluster", CLUSTER];
    await startDaemon(t, [server.url], CLUSTER, "a", ["--log-level", "warn"]);

    // Bad data: named by file and line, exit 1, nothing uploaded.
    const ragged = join(dir, "ragged.csv");
    writeFileSync(ragged, "a,b,y\n1,2,x\n3,4\n");
    const badJson = join(dir, "bad.jsonl");
    writeFileSync(badJson, '{"a":1,"y":"p"}\n{"a":2,\n');
    for (const [file, where] of [
      [ragged, /ragged\.csv: line 3: ragged row/],
      [badJson, /bad\.jsonl: line 2: is not valid JSON/],
      [join(dir, "missing.csv"), /missing\.csv: cannot be read/],
      // a folder is an images dataset: this one holds files, not class folders
      [dir, /bad\.jsonl: is not a class folder/],
    ] as const) {
      const run = await flock(t, ["data", "put", file, "--name", "bad", ...nats]);
      assert.equal(run.code, 1, run.out);
      assert.match(run.out, where);
    }
    const badName = await flock(t, ["data", "put", ragged, "--name", "no.dots", ...nats]);
    assert.equal(badName.code, 2, badName.out);
    assert.match(badName.out, /not a valid dataset name/);
    const empty = await flock(t, ["data", "ls", "--json", ...nats]);
    assert.equal(empty.code, 0, empty.out);
    assert.deepEqual(lastJson<{ datasets: unknown[] }>(empty).datasets, []);

    // Store the examples in shards.
    const put = async (file: string, name: string, extra: string[] = []): Promise<PutResult> => {
      const run = await flock(t, [
        "data",
        "put",
        join(examples, "data", file),
        "--name",
        name,
        "--json",
        ...extra,
        ...nats,
      ]);
      assert.equal(run.code, 0, run.out);
      assert.match(run.out, /uploading flock:\/\/\S+: shard \d+\/\d+/);
      return lastJson<PutResult>(run);
    };
    const flowers = await put("flowers.csv", "flowers", ["--shard-records", "100"]);
    assert.deepEqual([flowers.records, flowers.shards, flowers.format], [600, 6, "csv"]);
    const reviews = await put("reviews-train.jsonl", "reviews", ["--shard-kib", "16"]);
    assert.equal(reviews.records, 800);
    assert.ok(reviews.shards > 1, `${reviews.shards} shards`);
    await put("reviews-test.jsonl", "reviews-test");
    const again = await flock(t, [
      "data",
      "put",
      join(examples, "data", "flowers.csv"),
      "--name",
      "flowers",
      ...nats,
    ]);
    assert.equal(again.code, 1, again.out);
    assert.match(again.out, /flock:\/\/flowers already exists/);
    const table = await flock(t, ["data", "ls", ...nats]);
    assert.match(table.stdout, /^NAME\s+RECORDS\s+SHARDS\s+BYTES\s+FORMAT\s+CREATED/);
    assert.match(table.stdout, /\nflowers\s+600\s+6\s+\S+ KiB\s+csv\s/);
    assert.match(table.stdout, /\nreviews-test\s+200\s+1\s/);

    // Train each job from files and from the store: one worker, the same seed, the same result.
    const trainJob = async (file: string): Promise<TrainResult> => {
      const args = [
        "train",
        file,
        "--workers",
        "1",
        "--epochs",
        "2",
        "--seed",
        "5",
        "--json",
        "--no-report",
        ...nats,
      ];
      const run = await flock(t, args, 180_000);
      assert.equal(run.code, 0, run.out);
      return lastJson<TrainResult>(run);
    };
    const abs = (f: string): string => pathToFileURL(join(examples, "data", f)).href;
    const flowersFile = await trainJob(jobFile("flowers", "flowers-file", { source: abs("flowers.csv") }));
    const flowersStored = await trainJob(jobFile("flowers", "flowers-stored", { source: "flock://flowers" }));
    assert.equal(flowersStored.status, "completed");
    assert.deepEqual(flowersStored.samplesPerEpoch, flowersFile.samplesPerEpoch);
    t.diagnostic(`flowers accuracy: file:// ${flowersFile.accuracy}, flock:// ${flowersStored.accuracy}`);
    assert.equal(flowersStored.accuracy, flowersFile.accuracy, "same samples, same order, same steps");
    assert.equal(flowersStored.loss, flowersFile.loss);
    assert.ok(flowersStored.accuracy > 0.8, `flowers accuracy ${flowersStored.accuracy}`);
    const reviewsFile = await trainJob(
      jobFile("reviews", "reviews-file", {
        source: abs("reviews-train.jsonl"),
        test: abs("reviews-test.jsonl"),
      }),
    );
    const reviewsStored = await trainJob(
      jobFile("reviews", "reviews-stored", { source: "flock://reviews", test: "flock://reviews-test" }),
    );
    assert.equal(reviewsStored.status, "completed");
    t.diagnostic(`reviews accuracy: file:// ${reviewsFile.accuracy}, flock:// ${reviewsStored.accuracy}`);
    assert.equal(reviewsStored.accuracy, reviewsFile.accuracy);
    assert.equal(reviewsStored.loss, reviewsFile.loss);

    // Remove one: gone from the list, and a job on it is refused before anything starts.
    const rm = await flock(t, ["data", "rm", "flowers", ...nats]);
    assert.equal(rm.code, 0, rm.out);
    assert.match(rm.stdout, /removed flock:\/\/flowers \(7 objects\)/);
    const after = lastJson<{ datasets: { name: string }[] }>(
      await flock(t, ["data", "ls", "--json", ...nats]),
    );
    assert.deepEqual(
      after.datasets.map((d) => d.name),
      ["reviews", "reviews-test"],
    );
    const gone = await flock(t, [
      "train",
      jobFile("flowers", "flowers-gone", { source: "flock://flowers" }),
      "--json",
      "--no-report",
      ...nats,
    ]);
    assert.equal(gone.code, 1, gone.out);
    assert.match(gone.out, /flock:\/\/flowers: no such dataset in the cluster/);
    const goneId = /\(job (\S+)\)/.exec(gone.out)?.[1];
    const jobs = lastJson<{ jobs: { id: string }[] }>(await flock(t, ["jobs", "--json", ...nats]));
    assert.ok(goneId && !jobs.jobs.some((j) => j.id === goneId), `job ${goneId} was not started`);
    const rmAgain = await flock(t, ["data", "rm", "flowers", ...nats]);
    assert.equal(rmAgain.code, 1, rmAgain.out);
  },
);
