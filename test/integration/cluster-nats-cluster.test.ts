/**
 * Three daemons on a three-server NATS cluster (JetStream buckets with three replicas): when the NATS
 * server most of them are connected to is killed, they reconnect to the others and membership stays
 * correct (nobody declared dead, nobody rejoins); a daemon killed afterwards is still detected.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { StorageType, connect } from "nats";
import { startNatsCluster, type NatsClusterHandle, type NatsServerHandle } from "../../tools/natsd/index.js";
import { formatLogs, registerCleanup, scaleTimeout, waitFor } from "../helpers/index.js";
import {
  allAlive,
  daemonWarnings,
  startedDaemons,
  loggedEvents,
  loggedLines,
  startDaemon,
  statusCli,
  viewReader,
  type Daemon,
} from "./cluster-kit.js";

let nats: NatsClusterHandle;
before(async () => {
  nats = await startNatsCluster(3);
});
after(async () => {
  await nats?.stop();
});

/** Names of the client connections of one server (daemons call theirs `flock-daemon-<id>`). */
async function connectionNames(s: NatsServerHandle): Promise<string[]> {
  const res = await fetch(`${s.monitorUrl}/connz?limit=1000`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { connections?: Array<{ name?: string }> };
  return (body.connections ?? []).map((c) => c.name ?? "");
}

test("a NATS server of the cluster dies: daemons reconnect to the others and membership stays correct", async (t) => {
  const cluster = `itc${process.pid}`;
  const urls = nats.urls;
  try {
    const ds: Daemon[] = await Promise.all(["n1", "n2", "n3"].map((id) => startDaemon(t, urls, cluster, id)));
    const view = await viewReader(t, urls, cluster);

    await t.test("all alive; the buckets have three replicas", async () => {
      await waitFor("three alive", async () => allAlive(await view(), ds));
      assert.ok(allAlive(await statusCli(urls, cluster), ds));
      const nc = await connect({ servers: [...urls] });
      registerCleanup(t, () => nc.close());
      const jsm = await nc.jetstreamManager();
      for (const bucket of ["leases-15000", "membership"]) {
        const info = await jsm.streams.info(`KV_flock_${cluster}_${bucket}`);
        assert.equal(info.config.num_replicas, 3, bucket);
        // Replicated TTL buckets live in memory (runtime/store/jetstream.ts says why).
        assert.equal(info.config.storage, StorageType.Memory, bucket);
      }
    });

    await t.test(
      "kill the NATS server with the most daemons: they reconnect, nobody is declared dead",
      async () => {
        const served = await Promise.all(
          nats.servers.map(async (s) =>
            (await connectionNames(s))
              .filter((n) => n.startsWith("flock-daemon-"))
              .map((n) => n.slice("flock-daemon-".length)),
          ),
        );
        const most = Math.max(...served.map((ids) => ids.length));
        const victim = nats.servers[served.findIndex((ids) => ids.length === most)]!;
        const moved = ds.filter((d) => served[nats.servers.indexOf(victim)]!.includes(d.id));
        t.diagnostic(`killing ${victim.serverName}, which serves ${moved.map((d) => d.id).join(", ")}`);
        assert.ok(moved.length > 0, "the victim serves at least one daemon");
        const deadBefore = ds.map((d) => loggedEvents(d, "dead").length);
        const reconnectsBefore = ds.map((d) => loggedLines(d, /"msg":"nats: reconnected"/).length);
        victim.kill("SIGKILL");
        await victim.exited();
        await waitFor(
          "the daemons of the dead server reconnected elsewhere",
          () =>
            moved.every(
              (d) => loggedLines(d, /"msg":"nats: reconnected"/).length > reconnectsBefore[ds.indexOf(d)]!,
            ),
          { timeoutMs: 10_000 },
        );
        // Past the deadline, twice over: a false death would show by now.
        await sleep(4000);
        const s = await waitFor(
          "a view with all three alive",
          async () => {
            const v = await view();
            return allAlive(v, ds) ? v : undefined;
          },
          { timeoutMs: 15_000 },
        );
        assert.ok(allAlive(s, ds), JSON.stringify(s.nodes));
        assert.deepEqual(
          ds.map((d) => loggedEvents(d, "dead").length),
          deadBefore,
          "no node was marked dead",
        );
        for (const d of ds) assert.deepEqual(loggedLines(d, /rejoin/), [], `${d.id} did not rejoin`);
      },
    );

    await t.test("with one NATS server down, a killed daemon is still reported dead", async () => {
      const victim = ds[2]!;
      const killedAt = Date.now();
      victim.proc.kill("SIGKILL");
      await waitFor(
        `${victim.id} dead`,
        async () => (await view()).nodes.find((n) => n.id === victim.id)?.state === "dead",
        { timeoutMs: 15_000, intervalMs: 25 },
      );
      const ms = Date.now() - killedAt;
      t.diagnostic(`${victim.id} reported dead ${ms} ms after SIGKILL`);
      assert.ok(ms < scaleTimeout(4000), `${ms} ms`);
      await waitFor("the two others still alive", async () => allAlive(await view(), ds.slice(0, 2)));
    });
  } catch (err) {
    process.stderr.write(
      `\nnats-server logs:\n${formatLogs(nats.servers)}\n${daemonWarnings(startedDaemons)}\n`,
    );
    throw err;
  }
});
