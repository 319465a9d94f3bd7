/**
 * The coordinator's shell on an in-process actor system with a fake host and an in-memory store:
 * the claim decodes the record (a corrupt one fails the job and resigns), an ended job stands
 * down, and the status reply reports the machine's phase. No network, no nats-server.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ActorSystem, type ActorRef, type Message } from "../../runtime/actor/index.js";
import { VirtualScheduler } from "../../runtime/clock.js";
import type { MembershipView } from "../../runtime/cluster/types.js";
import { MemoryStores } from "../../runtime/store/index.js";
import { InProcBus } from "../../runtime/transport/index.js";
import { Packr } from "msgpackr";
import { decodeJob, encodeJob } from "../../actors/coordinator/codec.js";
import type { CoordinatorHost } from "../../actors/coordinator/host.js";
import { coordinatorBehavior, type CoordinatorMsg } from "../../actors/coordinator/shell.js";
import { freshJob } from "../../actors/coordinator/placement.js";
import { buildResult } from "../../actors/coordinator/state.js";
import { ShardLedger } from "../../actors/ledger/ledger.js";
import { nodeInfo, testSpec } from "./coordinator-harness.js";

interface Fake {
  host: CoordinatorHost;
  published: Message[];
  readonly resigned: number;
  stores: MemoryStores;
}

function fakeHost(): Fake {
  const stores = new MemoryStores();
  const membership: MembershipView = {
    epoch: 1,
    nodes: () => [nodeInfo("a")],
    alive: () => [nodeInfo("a")],
    get: () => undefined,
    subscribe: () => () => undefined,
    fence: () => undefined,
  };
  const published: Message[] = [];
  const counts = { resigned: 0 };
  const host: CoordinatorHost = {
    nodeId: "a",
    membership,
    campaign: (_key, onAcquired) => {
      onAcquired(4);
      return () => undefined;
    },
    resign: async () => void counts.resigned++,
    stateKv: () => stores.kv("jobstate"),
    writeJobRecord: async () => undefined,
    blobs: () => stores.blobs("checkpoints"),
    publish: (_topic, msg) => void published.push(msg),
    spawnRemote: () => Promise.reject(new Error("no spawns in this test")),
    stopRemote: async () => undefined,
  };
  return {
    host,
    published,
    stores,
    get resigned() {
      return counts.resigned;
    },
  };
}

async function until(f: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(f(), what);
}

async function withSystem(run: (system: ActorSystem) => Promise<void>): Promise<void> {
  const system = await ActorSystem.start({ nodeId: "a", transport: new InProcBus().connect() });
  try {
    await run(system);
  } finally {
    await system.stop();
  }
}

function spawn(system: ActorSystem, fake: Fake, name: string): ActorRef<CoordinatorMsg> {
  return system.spawn(coordinatorBehavior("j", testSpec(), fake.host, new VirtualScheduler()), { name });
}

test("a corrupt job record fails the job with a clear error and resigns", async () => {
  await withSystem(async (system) => {
    const fake = fakeHost();
    await (await fake.stores.kv("jobstate")).put("j", new Packr().pack({ job: "j", step: "three" }));
    spawn(system, fake, "c1");
    await until(() => fake.published.some((m) => m.type === "job.failed"), "job.failed published");
    const failed = fake.published.find((m) => m.type === "job.failed");
    assert.match(JSON.stringify(failed), /job state unreadable: job state does not decode/);
    await until(() => fake.resigned > 0, "resigned");
  });
});

test("an ended job's record makes the coordinator stand down; a running one is claimed under the new term", async () => {
  await withSystem(async (system) => {
    const fake = fakeHost();
    const kv = await fake.stores.kv("jobstate");
    const fresh = freshJob("j", testSpec(), 1, 0);
    const ledger = ShardLedger.restore(fresh.ledger);
    await kv.put(
      "j",
      encodeJob({
        ...fresh,
        state: "finished",
        result: buildResult(fresh, ledger, "completed", undefined, 0),
      }),
    );
    spawn(system, fake, "c2");
    await until(() => fake.published.some((m) => m.type === "job.finished"), "job.finished replayed");
  });
  await withSystem(async (system) => {
    const fake = fakeHost();
    const kv = await fake.stores.kv("jobstate");
    await kv.put("j", encodeJob(freshJob("j", testSpec(), 1, 0)));
    const ref = spawn(system, fake, "c3");
    // The takeover records its failover in the claimed state and asks the (absent) reducers to abort.
    await new Promise((r) => setTimeout(r, 50));
    const status = await ref.ask<Message & { phase: string; term: number }>(
      { type: "coord.status" },
      { timeoutMs: 1000 },
    );
    assert.equal(status.term, 4);
    // Taken over: no member is left, so after the (empty) reducer recovery the job waits for nodes.
    assert.equal(status.phase, "paused");
    const claimed = await kv.get("j");
    assert.ok(claimed);
    assert.equal(decodeJob(claimed.value).term, 4, "the record is claimed under the new term");
  });
});
