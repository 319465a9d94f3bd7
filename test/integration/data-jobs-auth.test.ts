/**
 * Jobs on the user's data under the roles of `flock auth init`, on a nats-server running the
 * generated config: with the submitter's creds, a `file://` CSV job (placed after the node's
 * data-check actor confirms it holds the file, by hash) and a `flock://` images job (the daemon
 * fetches the shards the submitter put from the datasets bucket) both complete on a daemon with
 * its own creds, and the daemon's connection meets no permissions violation.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { after, before, test, type TestContext } from "node:test";
import type { TrainResult } from "../../actors/api.js";
import type { NatsServerHandle } from "../../tools/natsd/index.js";
import { startAuthServer, type AuthServer } from "./auth-kit.js";
import { writeShapes } from "../fixtures/synthetic-images.js";
import { scaleTimeout, spawnChild } from "../helpers/index.js";
import { FLOCK, exitWithin } from "./cluster-kit.js";
import { dense } from "../../actors/compute/model-zoo.js";

const CLUSTER = "dja";
const examples = fileURLToPath(new URL("../../../examples/", import.meta.url));
let dir: string;
let server: NatsServerHandle;
const creds = (who: string): string => join(dir, `${who}.creds`);

let auth: AuthServer | undefined;
before(async () => {
  auth = await startAuthServer(CLUSTER, ["a"], "flock-data-jobs-auth");
  ({ dir, server } = auth);
});
after(() => auth?.stop());

/** `flock ...args` with `who`'s creds (`--creds`), to its end; its exit code and output. */
async function flockAs(t: TestContext, who: string, args: string[], limitMs = 60_000) {
  const where = ["--nats", server.url, "--cluster", CLUSTER, "--creds", creds(who)];
  const child = spawnChild(process.execPath, [FLOCK, ...args, ...where], {
    name: `flock ${args[0]} ${args[1]}`,
  });
  t.after(() => child.stop());
  const code = await exitWithin(child, scaleTimeout(limitMs));
  return { code, out: child.output(), stdout: child.stdout() };
}

const lastJson = <T>(stdout: string): T => JSON.parse(stdout.trim().split("\n").pop() ?? "") as T;

/** A job file in the temp folder: `job` with `dataset` replaced. */
function jobFile(name: string, job: Record<string, unknown>, dataset: Record<string, unknown>): string {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ ...job, name, dataset }));
  return path;
}

test(
  "under nkey auth, a file:// job passes the data check and a flock:// images job reads the datasets bucket",
  { timeout: scaleTimeout(150_000) },
  async (t) => {
    const daemon = spawnChild(
      process.execPath,
      [FLOCK, "daemon", "--nats", server.url, "--node-id", "a", "--cluster", CLUSTER, "--creds", creds("a")],
      { name: "daemon a" },
    );
    t.after(() => daemon.stop());
    await daemon.waitForLine(/ready/, scaleTimeout(20_000));

    const shapes = writeShapes(join(dir, "shapes"), 40, 7);
    const put = await flockAs(t, "submitter", ["data", "put", shapes, "--name", "shapes", "--json"]);
    assert.equal(put.code, 0, put.out);

    const train = ["--workers", "1", "--seed", "2", "--json", "--no-report"];
    const flowers = JSON.parse(readFileSync(join(examples, "flowers.json"), "utf8")) as Record<
      string,
      unknown
    >;
    const csv = pathToFileURL(join(examples, "data", "flowers.csv")).href;
    const fileJob = jobFile("flowers-file", flowers, {
      source: csv,
      format: "csv",
      label: "species",
      test: { fraction: 0.2 },
    });
    const fromFile = await flockAs(t, "submitter", ["train", fileJob, "--epochs", "3", ...train], 90_000);
    assert.equal(fromFile.code, 0, `${fromFile.out}\n${daemon.output()}`);
    const fileResult = lastJson<TrainResult>(fromFile.stdout);
    assert.equal(fileResult.status, "completed");
    assert.ok(fileResult.accuracy > 0.8, `flowers accuracy ${fileResult.accuracy}`);

    const layers = [
      { class_name: "Flatten", config: { name: "flat", batch_input_shape: [null, 10, 10, 1] } },
      dense("logits", 2, "linear"),
    ];
    const imagesJob = jobFile(
      "shapes-stored",
      {
        model: { class_name: "Sequential", config: { name: "shapes-linear", layers } },
        globalBatch: 16,
        optimizer: { name: "adam", lr: 0.02 },
        evalEvery: 10,
      },
      { source: "flock://shapes", format: "images", size: [10, 10], channels: 1, test: { fraction: 0.25 } },
    );
    const fromStore = await flockAs(t, "submitter", ["train", imagesJob, "--epochs", "4", ...train], 90_000);
    assert.equal(fromStore.code, 0, `${fromStore.out}\n${daemon.output()}`);
    const storeResult = lastJson<TrainResult>(fromStore.stdout);
    assert.equal(storeResult.status, "completed");
    t.diagnostic(
      `under auth: flowers (file://) ${fileResult.accuracy}, shapes (flock://) ${storeResult.accuracy}`,
    );
    assert.ok(storeResult.accuracy > 0.6, `shapes accuracy ${storeResult.accuracy} (chance 0.5)`);
    assert.doesNotMatch(daemon.output(), /[Pp]ermissions [Vv]iolation/, "the daemon was refused nothing");
  },
);
