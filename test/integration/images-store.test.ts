/**
 * Image folders in the cluster against a real nats-server (JetStream) and two daemons as child
 * processes: `flock data put DIR` refuses a folder with a bad image (named by its file, exit 1,
 * nothing stored), stores a generated folder of two classes of shapes in shards with progress and
 * a `--json` result, `flock data ls` lists it (records = images), a job with
 * `source: "flock://NAME", format: "images"` trains from it on both daemons well above chance, and
 * `flock data rm` removes every object of it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { TrainResult } from "../../actors/api.js";
import type { PutResult } from "../../tools/cli/data.js";
import { writeShapes } from "../fixtures/synthetic-images.js";
import { scaleTimeout, useNatsServer, type HasAfter } from "../helpers/index.js";
import { lastJsonLine, runFlock, startDaemon, type FlockRun } from "./cluster-kit.js";
import { dense } from "../../actors/compute/model-zoo.js";

const CLUSTER = "imgs";
const dir = mkdtempSync(join(tmpdir(), "flock-images-store-it-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

type Run = FlockRun;
const flock = (t: HasAfter, args: string[], limitMs = 30_000): Promise<Run> => runFlock(t, args, limitMs);
const lastJson = <T>(run: Run): T => lastJsonLine<T>(run.stdout);

/** A small images job on `source`: an MLP on 12×12 grey shapes, up to two workers. */
function jobFile(source: string): string {
  const layers = [
    { class_name: "Flatten", config: { name: "flat", batch_input_shape: [null, 12, 12, 1] } },
    dense("hidden", 32, "relu"),
    dense("logits", 2, "linear"),
  ];
  const job = {
    name: "shapes-stored",
    model: { class_name: "Sequential", config: { name: "shapes-mlp", layers } },
    dataset: { source, format: "images", size: [12, 12], channels: 1, test: { fraction: 0.25 } },
    epochs: 12,
    globalBatch: 16,
    optimizer: { name: "adam", lr: 0.01 },
    minWorkers: 1,
    maxWorkers: 2,
    evalEvery: 20,
  };
  const path = join(dir, "shapes-stored.json");
  writeFileSync(path, JSON.stringify(job));
  return path;
}

test(
  "flock data put DIR stores an image folder; a flock:// images job trains from it on two daemons; rm cleans it",
  { timeout: scaleTimeout(90_000) },
  async (t) => {
    const server = await useNatsServer(t, { jetstream: true });
    const nats = ["--nats", server.url, "--cluster", CLUSTER];
    const daemons = Promise.all(
      ["a", "b"].map((id) => startDaemon(t, [server.url], CLUSTER, id, ["--log-level", "warn"])),
    );

    // A bad image: named by its file, exit 1, nothing stored.
    const bad = writeShapes(join(dir, "bad"), 3, 2);
    writeFileSync(join(bad, "disc", "0001.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    const refused = await flock(t, ["data", "put", bad, "--name", "shapes", ...nats]);
    assert.equal(refused.code, 1, refused.out);
    assert.match(refused.out, /bad\/disc\/0001\.jpg: cannot be decoded as JPEG/);

    const shapes = writeShapes(join(dir, "shapes"), 60, 11);
    const asCsv = await flock(t, ["data", "put", shapes, "--name", "shapes", "--format", "csv", ...nats]);
    assert.equal(asCsv.code, 1, asCsv.out);
    assert.match(asCsv.out, /shapes: is a folder: only an images dataset is a folder, not csv/);
    const put = await flock(t, [
      "data",
      "put",
      shapes,
      "--name",
      "shapes",
      "--shard-records",
      "25",
      "--json",
      ...nats,
    ]);
    assert.equal(put.code, 0, put.out);
    assert.match(put.out, /uploading flock:\/\/shapes: shard 5\/5/);
    const stored = lastJson<PutResult>(put);
    assert.deepEqual([stored.format, stored.records, stored.shards], ["images", 120, 5]);
    const table = await flock(t, ["data", "ls", ...nats]);
    assert.equal(table.code, 0, table.out);
    assert.match(table.stdout, /\nshapes\s+120\s+5\s+\S+ KiB\s+images\s/);

    await daemons;
    const trained = await flock(
      t,
      ["train", jobFile("flock://shapes"), "--workers", "2", "--seed", "3", "--json", "--no-report", ...nats],
      60_000,
    );
    assert.equal(trained.code, 0, trained.out);
    const result = lastJson<TrainResult>(trained);
    assert.equal(result.status, "completed");
    assert.deepEqual([...result.members].sort(), ["a", "b"], "both daemons trained");
    assert.ok(result.ledgerAudit.exact, "every sample counted once per epoch");
    t.diagnostic(
      `flock://shapes accuracy ${result.accuracy} on 30 test images (chance 0.5), ${result.steps} steps`,
    );
    assert.ok(result.accuracy >= 0.85, `accuracy ${result.accuracy} is not clearly above chance (0.5)`);

    const rm = await flock(t, ["data", "rm", "shapes", "--json", ...nats]);
    assert.equal(rm.code, 0, rm.out);
    assert.equal(lastJson<{ objects: number }>(rm).objects, 6, "the manifest and 5 shards");
    const after = lastJson<{ datasets: unknown[] }>(await flock(t, ["data", "ls", "--json", ...nats]));
    assert.deepEqual(after.datasets, []);
  },
);
