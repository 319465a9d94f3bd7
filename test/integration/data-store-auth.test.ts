/**
 * The datasets bucket under the roles of `flock auth init`, on a nats-server running the generated
 * config: a daemon creates the bucket and reads a dataset (fetches and verifies its shards) but
 * cannot store one; the submitter puts and removes; the observer lists but cannot remove.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test, type TestContext } from "node:test";
import { connect } from "nats";
import { DATASETS_BUCKET, listDatasets } from "../../actors/compute/dataset-store.js";
import { dataAccess, fetchStoredSources } from "../../actors/compute/dataset-store-cache.js";
import { FileDatasetSpec } from "../../actors/compute/dataset-spec.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import { natsConnectionOptions } from "../../runtime/transport/index.js";
import type { NatsServerHandle } from "../../tools/natsd/index.js";
import { startAuthServer, type AuthServer } from "./auth-kit.js";
import { scaleTimeout, spawnChild } from "../helpers/index.js";
import { FLOCK } from "./cluster-kit.js";

const CLUSTER = "dsec";
const flowers = fileURLToPath(new URL("../../../examples/data/flowers.csv", import.meta.url));
let dir: string;
let server: NatsServerHandle;
const creds = (who: string): string => join(dir, `${who}.creds`);

let auth: AuthServer | undefined;
before(async () => {
  auth = await startAuthServer(CLUSTER, ["a"], "flock-data-auth");
  ({ dir, server } = auth);
});
after(() => auth?.stop());

/** `flock data ...args` as `who`; its exit code and output. */
async function data(
  who: string,
  args: string[],
): Promise<{ code: number | null; out: string; stdout: string }> {
  const child = spawnChild(process.execPath, [
    FLOCK,
    "data",
    ...args,
    "--nats",
    server.url,
    "--cluster",
    CLUSTER,
    "--creds",
    creds(who),
    "--timeout-ms",
    "5000",
  ]);
  const exit = await Promise.race([
    child.exited,
    new Promise<"timeout">((r) => setTimeout(() => r("timeout"), scaleTimeout(30_000)).unref()),
  ]);
  if (exit === "timeout") {
    await child.stop(0);
    assert.fail(`flock data ${args[0]} as ${who} did not end:\n${child.output()}`);
  }
  return { code: exit.code, out: child.output(), stdout: child.stdout() };
}

/** The cluster's stores as `who`, in this process. */
async function storesAs(t: TestContext, who: string): Promise<JetStreamStores> {
  const nc = await connect(natsConnectionOptions({ servers: server.url, credsFile: creds(who) }));
  t.after(() => nc.close());
  return new JetStreamStores(nc, { cluster: CLUSTER });
}

test("daemon: creates the bucket, cannot put; submitter: puts; daemon: reads and verifies the shards", async (t) => {
  const daemon = await storesAs(t, "a");
  assert.deepEqual((await listDatasets(await daemon.blobs(DATASETS_BUCKET))).datasets, []);
  const refused = await data("a", ["put", flowers, "--name", "by-daemon"]);
  assert.equal(refused.code, 1, refused.out);
  assert.match(refused.out, /Permissions Violation/);
  const put = await data("submitter", ["put", flowers, "--name", "flowers", "--shard-records", "200"]);
  assert.equal(put.code, 0, put.out);
  assert.match(put.stdout, /stored flock:\/\/flowers: 600 records \(csv\) in 3 shard\(s\)/);
  const spec = FileDatasetSpec.parse({ source: "flock://flowers", format: "csv", label: "species" });
  const fetched = await fetchStoredSources(spec, dataAccess(daemon, join(dir, "cache")));
  assert.equal(fetched?.["flock://flowers"]?.manifest.records, 600);
  const names = (await listDatasets(await daemon.blobs(DATASETS_BUCKET))).datasets.map((d) => d.name);
  assert.deepEqual(names, ["flowers"], "the daemon's refused put left nothing");
});

test("observer: lists, cannot remove; submitter: removes", async () => {
  const ls = await data("observer", ["ls", "--json"]);
  assert.equal(ls.code, 0, ls.out);
  const listed = JSON.parse(ls.stdout.trim().split("\n").pop() ?? "") as { datasets: { name: string }[] };
  assert.deepEqual(
    listed.datasets.map((d) => d.name),
    ["flowers"],
  );
  const rmRefused = await data("observer", ["rm", "flowers"]);
  assert.equal(rmRefused.code, 1, rmRefused.out);
  assert.match(rmRefused.out, /Permissions Violation for Publish to "\$O\.flock_dsec_datasets\./);
  const still = await data("observer", ["ls"]);
  assert.match(still.stdout, /\nflowers\s+600\s+3\s/);
  const rm = await data("submitter", ["rm", "flowers"]);
  assert.equal(rm.code, 0, rm.out);
  const empty = await data("observer", ["ls"]);
  assert.match(empty.stdout, /no datasets/);
});
