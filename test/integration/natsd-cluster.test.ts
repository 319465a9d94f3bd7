import assert from "node:assert/strict";
import { connect, Events, StringCodec } from "nats";
import { natsTest, registerCleanup, waitFor } from "../helpers/index.js";

const sc = StringCodec();

interface Routez {
  num_routes: number;
}

async function numRoutes(monitorUrl: string | undefined): Promise<number> {
  const res = await fetch(`${monitorUrl}/routez`, { signal: AbortSignal.timeout(1000) });
  return ((await res.json()) as Routez).num_routes;
}

natsTest(
  "a 3-server JetStream cluster forms, survives losing a server, and the server rejoins",
  async (t, nats) => {
    const cluster = await nats.cluster(3, { name: "flocktest" });
    assert.equal(cluster.servers.length, 3);
    assert.equal(new Set(cluster.urls).size, 3);
    assert.deepEqual(
      cluster.servers.map((s) => s.serverName),
      ["flocktest-0", "flocktest-1", "flocktest-2"],
    );
    for (const s of cluster.servers) assert.equal(await numRoutes(s.monitorUrl), 2);

    // Connect to server 0 first so that killing it forces a failover.
    const nc = await connect({
      servers: [...cluster.urls],
      noRandomize: true,
      reconnectTimeWait: 50,
      maxReconnectAttempts: -1,
      timeout: 2000,
    });
    registerCleanup(t, () => nc.close());
    let reconnects = 0;
    void (async () => {
      for await (const s of nc.status()) if (s.type === Events.Reconnect) reconnects += 1;
    })();

    const kv = await nc.jetstream({ timeout: 3000 }).views.kv("lease", { replicas: 3 });
    const r1 = await kv.create("coordinator", sc.encode("node-a"));

    const victim = cluster.servers[0]!;
    victim.kill("SIGKILL");
    await victim.exited();
    await waitFor("client failover to a surviving server", () => reconnects >= 1, { timeoutMs: 5000 });
    // R3 KV keeps quorum with 2 of 3; the stream leader may move, so allow a few bounded retries.
    const r2 = await waitFor(
      "KV update with 2 of 3 servers",
      () => kv.update("coordinator", sc.encode("node-b"), r1),
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    assert.ok(r2 > r1);

    await victim.restart();
    await cluster.waitFormed(15_000);
    for (const s of cluster.servers) assert.equal(await numRoutes(s.monitorUrl), 2, `${s.serverName} routes`);

    // The rejoined server serves clients that only know it, and sees the replicated data.
    const direct = await connect({ servers: victim.url, timeout: 2000 });
    registerCleanup(t, () => direct.close());
    const kvDirect = await direct.jetstream({ timeout: 3000 }).views.kv("lease");
    const entry = await waitFor(
      "KV readable through the rejoined server",
      () => kvDirect.get("coordinator"),
      {
        timeoutMs: 10_000,
        intervalMs: 200,
      },
    );
    assert.equal(sc.decode(entry!.value), "node-b");
  },
);
