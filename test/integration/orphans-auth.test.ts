/**
 * The orphan watcher's reads (the job-state bucket's keys and records, the coordinators' leases)
 * under a daemon's credentials, on a nats-server started with the config `flock auth init` writes:
 * a scan finds the orphan and the server reports no permissions violation.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, ErrorCode } from "nats";
import { encodeJob } from "../../actors/coordinator/codec.js";
import { COORDINATOR_LEASE_MS } from "../../actors/coordinator/host.js";
import { freshJob } from "../../actors/coordinator/placement.js";
import { JOB_STATE_BUCKET } from "../../actors/job/names.js";
import { OrphanWatcher } from "../../actors/job/orphan-watcher.js";
import { DEFAULT_ORPHAN_POLICY } from "../../actors/job/orphans.js";
import { openLeaseBucket } from "../../runtime/cluster/lease.js";
import type { MembershipView } from "../../runtime/cluster/types.js";
import { silentLogger } from "../../runtime/log.js";
import { Metrics } from "../../runtime/metrics.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import { natsConnectionOptions } from "../../runtime/transport/index.js";
import type { NatsServerHandle } from "../../tools/natsd/index.js";
import { startAuthServer, type AuthServer } from "./auth-kit.js";
import { nodeInfo, testSpec } from "../unit/coordinator-harness.js";

const CLUSTER = "secorph";
let dir: string;
let server: NatsServerHandle;

let auth: AuthServer | undefined;
before(async () => {
  auth = await startAuthServer(CLUSTER, ["a"], "flock-auth-orphans");
  ({ dir, server } = auth);
});
after(() => auth?.stop());

test("a daemon's creds let its orphan watcher scan and find an orphan, without a permissions violation", async (t) => {
  const nc = await connect(natsConnectionOptions({ servers: server.url, credsFile: join(dir, "a.creds") }));
  t.after(() => nc.close());
  const violations: string[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      const ctx = (s as { permissionContext?: { operation: string; subject: string } }).permissionContext;
      if (s.type === "error" && s.data === ErrorCode.PermissionsViolation && ctx)
        violations.push(`${ctx.operation} ${ctx.subject}`);
    }
  })();
  const stores = new JetStreamStores(nc, { cluster: CLUSTER });
  const state = await stores.kv(JOB_STATE_BUCKET);
  await state.put("jx", encodeJob(freshJob("jx", testSpec(), 2, 0)));
  const membership: MembershipView = {
    epoch: 1,
    nodes: () => [nodeInfo("a")],
    alive: () => [nodeInfo("a")],
    get: () => undefined,
    subscribe: () => () => undefined,
    fence: () => undefined,
  };
  const spawned: string[] = [];
  const watcher = new OrphanWatcher(
    {
      nodeId: "a",
      membership,
      stateKv: () => stores.kv(JOB_STATE_BUCKET),
      leaseKv: () => openLeaseBucket(stores, COORDINATOR_LEASE_MS),
      hasCoordinator: () => false,
      spawnCoordinator: (job) => Promise.resolve(void spawned.push(job)),
      metrics: new Metrics(),
      log: silentLogger(),
    },
    { policy: { ...DEFAULT_ORPHAN_POLICY, graceMs: 0, startGraceMs: 0 } },
  );
  assert.deepEqual(await watcher.scanOnce(), ["jx"]);
  assert.deepEqual(spawned, ["jx"]);
  await nc.flush();
  await sleep(100);
  assert.deepEqual(violations, [], "no permissions violation");
});
