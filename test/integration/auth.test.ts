/**
 * A nats-server started with the config `flock auth init` writes: the three roles work as
 * described, and the server itself refuses what a role may not do — an anonymous connection, a
 * node publishing as another, a submitter heartbeating.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, ErrorCode, NatsError, type NatsConnection } from "nats";
import { followJob, readJobState, resolveJobSpec, runJob, saveJobModel } from "../../actors/api.js";
import { CHECKPOINTS_BUCKET, jobNames } from "../../actors/job/names.js";
import { connectCluster } from "../../actors/remote.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import { natsConnectionOptions } from "../../runtime/transport/index.js";
import { writeAuthFiles } from "../../tools/auth/command.js";
import type { ClusterStatus, JobsListing } from "../../tools/cli/index.js";
import { startNatsServer, type NatsServerHandle } from "../../tools/natsd/index.js";
import { scaleTimeout, spawnChild, type ChildHandle } from "../helpers/index.js";
import { FLOCK } from "./cluster-kit.js";

const CLUSTER = "sec";
let dir: string;
let server: NatsServerHandle;
const creds = (who: string): string => join(dir, `${who}.creds`);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "flock-auth-"));
  writeAuthFiles({ cluster: CLUSTER, nodes: ["a", "b"], out: dir });
  // The generated accounts file included from another config: the launcher's (port, store dir).
  // nats-server resolves includes relative to the including file, which the launcher writes in a
  // fresh directory directly under the temp dir.
  const include = relative(join(tmpdir(), "launcher-dir"), join(dir, "auth.conf"));
  server = await startNatsServer({
    jetstream: true,
    extraConfig: `include ${JSON.stringify(include)}`,
  });
});
after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A permissions violation the server reported (nats.js: an `error` status with its context). */
interface Violation {
  operation: string;
  subject: string;
}

/** A connection with one identity's credentials, and the permission violations the server reports to it. */
async function connectAs(
  t: TestContext,
  who: string,
): Promise<{ nc: NatsConnection; violations: Violation[] }> {
  const nc = await connect(natsConnectionOptions({ servers: server.url, credsFile: creds(who) }));
  t.after(() => nc.close());
  const violations: Violation[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      const ctx = (s as { permissionContext?: Violation }).permissionContext;
      if (s.type === "error" && s.data === ErrorCode.PermissionsViolation && ctx) violations.push(ctx);
    }
  })();
  return { nc, violations };
}

/** Publishes on `subject` and returns the server's refusal, or undefined when none came within a round trip. */
async function tryPublish(
  c: { nc: NatsConnection; violations: Violation[] },
  subject: string,
): Promise<Violation | undefined> {
  const seen = c.violations.length;
  c.nc.publish(subject, new Uint8Array([1]));
  await c.nc.flush();
  await sleep(100); // the -ERR follows the flush's PONG closely
  return c.violations.slice(seen).find((v) => v.subject === subject);
}

function daemon(t: TestContext, id: string): ChildHandle {
  const d = spawnChild(
    process.execPath,
    [
      FLOCK,
      "daemon",
      "--nats",
      server.url,
      "--node-id",
      id,
      "--cluster",
      CLUSTER,
      "--creds",
      creds(id),
      "--log-level",
      "warn",
    ],
    { name: `daemon ${id}` },
  );
  t.after(() => d.stop());
  return d;
}

async function statusAs(who: string): Promise<ClusterStatus> {
  const child = spawnChild(
    process.execPath,
    [FLOCK, "status", "--nats", server.url, "--cluster", CLUSTER, "--json", "--creds", creds(who)],
    { name: "flock status" },
  );
  const exit = await child.exited;
  assert.equal(exit.code, 0, child.output());
  return JSON.parse(child.stdout().trim().split("\n").pop() ?? "") as ClusterStatus;
}

test("an anonymous client cannot connect", async () => {
  await assert.rejects(
    connect({ servers: server.url, reconnect: false, timeout: 2000 }),
    (err: unknown) => err instanceof NatsError && err.code === ErrorCode.AuthorizationViolation,
  );
});

test(
  "a daemon with its creds runs a job for the submitter; flock status works with the observer's",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    const a = daemon(t, "a");
    await a.waitForLine(/ready/, scaleTimeout(20_000));
    const cluster = await connectCluster({
      servers: server.url,
      cluster: CLUSTER,
      credsFile: creds("submitter"),
    });
    t.after(() => cluster.close());
    assert.equal(cluster.client.nodeId, "submitter", "the client speaks under the identity its creds name");
    const deadline = Date.now() + scaleTimeout(10_000);
    while (cluster.aliveNodes().length < 1 && Date.now() < deadline) await sleep(100);
    const spec = resolveJobSpec("mnist", { minWorkers: 1, maxWorkers: 1, epochs: 1, seed: 5 });
    const result = await runJob(cluster, spec);
    assert.equal(result.status, "completed");
    assert.ok(result.accuracy > 0.8, `accuracy ${result.accuracy}`);
    // The submitter exports the job's model from the object store (it may read it, not write it).
    const out = mkdtempSync(join(tmpdir(), "flock-auth-model-"));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    const model = await saveJobModel(cluster, spec, result, out);
    assert.ok(existsSync(join(out, "model.json")), JSON.stringify(model));
    const sub0 = await connectAs(t, "submitter");
    assert.ok(
      await tryPublish(sub0, `$O.flock_sec_checkpoints.C.x`),
      "the submitter may not write the object store",
    );
    const status = await statusAs("observer");
    assert.deepEqual(
      status.nodes.map((n) => n.id),
      ["a"],
    );
    assert.ok(
      status.jobs.some((j) => j.id === spec.id),
      JSON.stringify(status.jobs),
    );
    assert.equal(status.warnings, undefined, JSON.stringify(status.warnings));
    // The submitter follows a job through its durable state record (what a client that lost the
    // job's end reads), and `flock jobs` works with the observer's creds.
    const read = await readJobState(cluster.stores, spec.id!);
    assert.equal(read.kind, "finished", JSON.stringify(read));
    const again = await followJob(cluster, spec.id!);
    assert.equal(again.job, spec.id);
    assert.equal(again.steps, result.steps);
    const jobs = await jobsAs("observer");
    assert.ok(
      jobs.jobs.some((j) => j.id === spec.id && j.state === "finished"),
      JSON.stringify(jobs),
    );
    // ... and cannot write it.
    const s = await connectAs(t, "submitter");
    for (const subject of [`$KV.flock_sec_jobstate.${spec.id}`, "$JS.API.STREAM.PURGE.KV_flock_sec_jobstate"])
      assert.ok(await tryPublish(s, subject), `the submitter may not publish on ${subject}`);
  },
);

async function jobsAs(who: string): Promise<JobsListing> {
  const child = spawnChild(
    process.execPath,
    [FLOCK, "jobs", "--nats", server.url, "--cluster", CLUSTER, "--json", "--creds", creds(who)],
    { name: "flock jobs" },
  );
  const exit = await child.exited;
  assert.equal(exit.code, 0, child.output());
  return JSON.parse(child.stdout().trim().split("\n").pop() ?? "") as JobsListing;
}

test("a daemon's creds write and read back a checkpoint blob, without a permissions violation", async (t) => {
  // Reducer recovery reads checkpoints: nats.js looks the object store's stream up (STREAM.NAMES)
  // on get, which the daemon role missed, so every recovery from a checkpoint failed under auth.
  const a = await connectAs(t, "a");
  const stores = new JetStreamStores(a.nc, { cluster: CLUSTER });
  const blobs = await stores.blobs(CHECKPOINTS_BUCKET);
  const data = new Uint8Array(300_000).map((_, i) => i % 251);
  await blobs.put(jobNames.checkpoint("jauth", 5, 0), data);
  assert.deepEqual(await blobs.get(jobNames.checkpoint("jauth", 5, 0)), data);
  const kv = await stores.kv("jobs");
  assert.equal(await kv.get("no-such-job"), undefined);
  await a.nc.flush();
  await sleep(100);
  assert.deepEqual(a.violations, [], "no permissions violation");
});

test("node a's creds cannot publish as node b: the server refuses each subject", async (t) => {
  const a = await connectAs(t, "a");
  assert.equal(await tryPublish(a, "flock.sec.hb.a"), undefined, "its own heartbeat subject is allowed");
  assert.equal(await tryPublish(a, "flock.sec.node.b.a"), undefined, "so are messages from a");
  for (const subject of [
    "flock.sec.node.a.b",
    "flock.sec.hb.b",
    "flock.sec.dead.b",
    "flock.sec.from.b.topic.job.j1.params",
  ]) {
    const v = await tryPublish(a, subject);
    assert.ok(v, `publishing on ${subject} as a is refused`);
    assert.equal(v.operation, "publish");
  }
  // Nor may a read what is addressed to b.
  const sub = a.nc.subscribe("flock.sec.node.b.*");
  const closed = await Promise.race([
    sub.closed.then(
      () => "closed" as const,
      () => "closed" as const,
    ),
    sleep(2000, "open" as const),
  ]);
  assert.equal(closed, "closed", "the server ends a subscription to b's subject");
});

test("the submitter cannot heartbeat or speak as a node; the observer publishes nothing of flock's", async (t) => {
  const s = await connectAs(t, "submitter");
  assert.equal(await tryPublish(s, "flock.sec.node.a.submitter"), undefined, "it may ask nodes as itself");
  for (const subject of [
    "flock.sec.hb.submitter",
    "flock.sec.hb.a",
    "flock.sec.node.b.a",
    "flock.sec.from.submitter.topic.x",
  ])
    assert.ok(await tryPublish(s, subject), `the submitter may not publish on ${subject}`);
  const o = await connectAs(t, "observer");
  for (const subject of ["flock.sec.node.a.observer", "flock.sec.hb.observer", "$KV.flock_sec_jobs.j1"])
    assert.ok(await tryPublish(o, subject), `the observer may not publish on ${subject}`);
});
