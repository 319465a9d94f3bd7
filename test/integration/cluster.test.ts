/**
 * Three `flock daemon` processes on a real nats-server: status, death detection of a SIGKILLed
 * daemon (the membership monitor itself), restart as a new incarnation, a NATS server restart
 * without a false death, a clean SIGTERM drain, refusal of a duplicate id, usage errors, metrics,
 * and lease candidates in two processes.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAuthFiles } from "../../tools/auth/command.js";
import { fileURLToPath } from "node:url";
import { freePort, startNatsServer, type NatsServerHandle } from "../../tools/natsd/index.js";
import { formatLogs, registerCleanup, scaleTimeout, spawnChild, waitFor } from "../helpers/index.js";
import {
  FLOCK,
  allAlive,
  daemonWarnings,
  startedDaemons,
  loggedEvents,
  loggedLines,
  nodeOf,
  startDaemon,
  statusCli,
  viewReader,
  type Daemon,
} from "./cluster-kit.js";

let server: NatsServerHandle;
before(async () => {
  server = await startNatsServer({ jetstream: true });
});
after(async () => {
  await server?.stop();
});

let clusterSeq = 0;
const clusterName = (): string => `it${process.pid}x${++clusterSeq}`;

test("three daemons: status, SIGKILL detected, restart, NATS restart survived, SIGSTOP rejoin, SIGTERM drains", async (t) => {
  const cluster = clusterName();
  const urls = [server.url];
  try {
    const port = await freePort();
    const ds: Daemon[] = await Promise.all([
      startDaemon(t, urls, cluster, "alpha", ["--metrics-port", String(port)]),
      startDaemon(t, urls, cluster, "bravo"),
      startDaemon(t, urls, cluster, "charlie"),
    ]);
    const view = await viewReader(t, urls, cluster);
    /** The daemon killed and restarted: the monitor's, to exercise the monitor's takeover too. */
    let victim!: Daemon;

    await t.test("flock status --json lists all three alive", async () => {
      await waitFor("three alive in the view", async () => allAlive(await view(), ds));
      const s = await statusCli(urls, cluster);
      assert.equal(s.cluster, cluster);
      assert.ok(allAlive(s, ds), JSON.stringify(s));
      assert.ok(s.epoch > 0);
      assert.deepEqual(s.jobs, []);
      for (const n of s.nodes) assert.deepEqual([n.slots, n.free, n.device], [1, 1, "auto"]);
    });

    await t.test("the metrics endpoint serves Prometheus text", async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      for (const series of [
        "flock_heartbeat_lag_seconds",
        "flock_event_loop_lag_seconds",
        "flock_members",
        "flock_membership_epoch",
        "flock_slots_free",
        "flock_heartbeat_age_seconds",
      ]) {
        assert.match(text, new RegExp(`^${series}`, "m"), series);
      }
      assert.match(text, /flock_members\{state="alive",node="[^"]+"\} 3/);
    });

    await t.test("SIGKILL of the monitor's node: reported dead within 3 s, epoch bumped", async () => {
      const before = await view();
      const monitorId = before.monitor!.slice(0, before.monitor!.lastIndexOf(":"));
      victim = ds.find((d) => d.id === monitorId)!;
      assert.ok(victim, `the monitor ${before.monitor} is one of the daemons`);
      const killedAt = Date.now();
      victim.proc.kill("SIGKILL");
      const dead = await waitFor(
        `${victim.id} dead in the view`,
        async () => {
          const s = await view();
          return s.nodes.find((n) => n.id === victim.id)?.state === "dead" ? s : undefined;
        },
        { timeoutMs: 6000, intervalMs: 25 },
      );
      const reportedAfterMs = Date.now() - killedAt;
      t.diagnostic(
        `${victim.id} reported dead ${reportedAfterMs} ms after SIGKILL (monitor moved to ${dead.monitor})`,
      );
      assert.ok(reportedAfterMs <= scaleTimeout(3000), `reported dead after ${reportedAfterMs} ms`);
      assert.ok(dead.epoch > before.epoch);
      assert.notEqual(dead.monitor, before.monitor);
      assert.ok(
        allAlive(
          dead,
          ds.filter((d) => d !== victim),
        ),
      );
      const s = await statusCli(urls, cluster);
      assert.equal(nodeOf(s, victim.id).state, "dead");
    });

    await t.test("restarted with the same id: alive again as a new incarnation", async () => {
      const started = Date.now();
      const old = victim;
      victim = await startDaemon(t, urls, cluster, old.id);
      ds[ds.indexOf(old)] = victim;
      t.diagnostic(`restart took ${Date.now() - started} ms (waits for the old incarnation's silence)`);
      assert.notEqual(victim.inc, old.inc);
      const s = await waitFor(`new ${victim.id} alive`, async () => {
        const v = await view();
        return allAlive(v, ds) ? v : undefined;
      });
      assert.equal(nodeOf(s, victim.id).incarnation, victim.inc);
      const observer = ds.find((d) => d !== victim)!;
      assert.ok(loggedEvents(observer, "dead").includes(`${old.id}:${old.inc}`));
    });

    await t.test("a NATS server restart: daemons reconnect, nobody is declared dead or rejoins", async () => {
      const deadBefore = ds.map((d) => loggedEvents(d, "dead").length);
      // Down for longer than the failure-detection deadline (2 s): every heartbeat is missed.
      const started = Date.now();
      server.kill("SIGKILL");
      await server.exited();
      await sleep(3000);
      await server.restart();
      t.diagnostic(`nats-server was down for ${Date.now() - started} ms`);
      await waitFor(
        "every daemon reconnected",
        () => ds.every((d) => loggedLines(d, /"msg":"nats: reconnected"/).length > 0),
        { timeoutMs: 10_000 },
      );
      const s = await waitFor(
        "all three alive after the blip",
        async () => {
          const v = await view();
          return allAlive(v, ds) ? v : undefined;
        },
        { timeoutMs: 10_000 },
      );
      // Stay a while past the deadline: a late false death would show now.
      await sleep(2500);
      const later = await view();
      assert.ok(allAlive(later, ds), JSON.stringify(later.nodes));
      assert.deepEqual(
        ds.map((d) => loggedEvents(d, "dead").length),
        deadBefore,
        "no node was marked dead during the blip",
      );
      for (const d of ds) assert.deepEqual(loggedLines(d, /rejoin/), [], `${d.id} did not rejoin`);
      assert.ok(later.epoch >= s.epoch);
    });

    await t.test(
      "SIGSTOP past the deadline, then SIGCONT: the daemon rejoins as a new incarnation",
      async () => {
        const target = victim;
        const oldInc = target.inc;
        const observer = ds.find((d) => d !== target)!;
        target.proc.kill("SIGSTOP");
        await waitFor(
          `${target.id} declared dead by ${observer.id}`,
          () => loggedEvents(observer, "dead").includes(`${target.id}:${oldInc}`),
          {
            timeoutMs: 6000,
          },
        );
        const resumedAt = Date.now();
        target.proc.kill("SIGCONT");
        const m = await target.proc.waitForLine(/rejoined as incarnation ([0-9a-f-]+)/, 10_000);
        target.inc = m[1]!;
        t.diagnostic(`${target.id} rejoined as ${target.inc} ${Date.now() - resumedAt} ms after SIGCONT`);
        assert.notEqual(target.inc, oldInc);
        await waitFor("all alive, with the new incarnation", async () => allAlive(await view(), ds));
        const othersDeclaredDead = loggedEvents(target, "dead").filter((e) => !e.startsWith(`${target.id}:`));
        assert.deepEqual(othersDeclaredDead, [], "its own stall did not make it declare the others dead");
      },
    );

    await t.test("SIGTERM drains: exit 0 within a few seconds, state left", async () => {
      const drainer = ds.find((d) => d !== victim)!;
      const started = Date.now();
      drainer.proc.kill("SIGTERM");
      const exit = await drainer.proc.exited;
      const tookMs = Date.now() - started;
      t.diagnostic(`${drainer.id} drained and exited in ${tookMs} ms`);
      assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null });
      assert.ok(tookMs < scaleTimeout(5000), `took ${tookMs} ms`);
      await waitFor(
        `${drainer.id} left`,
        async () => (await view()).nodes.find((n) => n.id === drainer.id)?.state === "left",
      );
      const s = await statusCli(urls, cluster);
      assert.equal(nodeOf(s, drainer.id).state, "left");
      assert.ok(
        allAlive(
          s,
          ds.filter((d) => d !== drainer),
        ),
      );
    });
  } catch (err) {
    process.stderr.write(`\nnats-server log:\n${formatLogs([server])}\n${daemonWarnings(startedDaemons)}\n`);
    throw err;
  }
});

test("a second daemon with the id of a live one is refused with a clear error", async (t) => {
  const cluster = clusterName();
  const first = await startDaemon(t, [server.url], cluster, "dup");
  const second = registerCleanup(
    t,
    spawnChild(
      process.execPath,
      [FLOCK, "daemon", "--nats", server.url, "--node-id", "dup", "--cluster", cluster],
      { name: "daemon dup (2nd)" },
    ),
  );
  const started = Date.now();
  const exit = await Promise.race([
    second.exited,
    sleep(scaleTimeout(10_000), "timeout" as const, { ref: false }),
  ]);
  assert.notEqual(exit, "timeout", "the second daemon exits");
  assert.equal((exit as { code: number }).code, 1);
  assert.ok(Date.now() - started < scaleTimeout(6000));
  assert.match(second.output(), /NodeIdInUseError/);
  assert.match(second.output(), /flock: node id "dup" is in use in cluster/);
  assert.equal(first.proc.child.exitCode, null, "the first one runs on");
});

test("bad flags: a clear error and exit status 2", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "flock-badflags-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeAuthFiles({ cluster: "c1", nodes: ["a"], out: dir });
  const creds = { dir, a: join(dir, "a.creds"), submitter: join(dir, "submitter.creds") };
  for (const args of [
    ["--nats", "nats://127.0.0.1:1", "--slots", "-1"],
    ["--nats", "nats://127.0.0.1:1", "--device", "tpu"],
    ["--nats", "not a url"],
    ["--nats", "nats://127.0.0.1:1", "--bogus"],
    ["--nats", "nats://127.0.0.1:1", "--heartbeat-ms", "500", "--dead-after-ms", "400"],
    // Credentials of node a, role daemon, cluster c1: refused for another id, cluster or role.
    ["--nats", "nats://127.0.0.1:1", "--cluster", "c1", "--creds", creds.a, "--node-id", "b"],
    ["--nats", "nats://127.0.0.1:1", "--cluster", "c2", "--creds", creds.a],
    ["--nats", "nats://127.0.0.1:1", "--cluster", "c1", "--creds", creds.submitter],
    ["--nats", "nats://127.0.0.1:1", "--cluster", "c1", "--creds", join(creds.dir, "missing.creds")],
  ]) {
    const p = registerCleanup(
      t,
      spawnChild(process.execPath, [FLOCK, "daemon", ...args], {
        name: `daemon ${args.join(" ")}`,
        env: { NATS_URL: "" },
      }),
    );
    const exit = await p.exited;
    assert.equal(exit.code, 2, `${args.join(" ")}: ${p.output()}`);
    assert.match(p.output(), /error: /);
  }
});

test("flock train: bad throughput flags are usage errors (exit 2) before anything starts", async (t) => {
  for (const args of [
    ["--staleness", "2"],
    ["--compression", "zip"],
    ["--balance", "fastest"],
  ]) {
    const p = registerCleanup(
      t,
      spawnChild(process.execPath, [FLOCK, "train", "mnist", ...args], { name: `train ${args.join(" ")}` }),
    );
    const exit = await p.exited;
    assert.equal(exit.code, 2, `${args.join(" ")}: ${p.output()}`);
    assert.match(p.output(), new RegExp(`error: option '${args[0]}`));
  }
});

const CANDIDATE = `
import { connect } from "nats";
const { JetStreamStores } = await import(process.env.FLOCK_STORE);
const { LeaseCandidate, openLeaseBucket } = await import(process.env.FLOCK_CLUSTER);
const nc = await connect({ servers: process.env.NATS });
const kv = await openLeaseBucket(new JetStreamStores(nc, { cluster: process.env.CLUSTER }), 1000);
const c = new LeaseCandidate(kv, "it-lease", process.env.HOLDER, { ttlMs: 1000 });
c.onAcquired((l) => console.log("ACQUIRED " + process.env.HOLDER + " rev " + l.revision));
c.onLost((r) => console.log("LOST " + r));
console.log("CANDIDATE " + process.env.HOLDER);
setInterval(() => {}, 1000);
`;

test("two lease candidates in two processes: exactly one holds, and it moves when the holder is killed", async (t) => {
  const cluster = clusterName();
  const env = (holder: string): NodeJS.ProcessEnv => ({
    NATS: server.url,
    CLUSTER: cluster,
    HOLDER: holder,
    FLOCK_STORE: new URL("../../runtime/store/index.js", import.meta.url).href,
    FLOCK_CLUSTER: new URL("../../runtime/cluster/index.js", import.meta.url).href,
  });
  const cwd = fileURLToPath(new URL("../../..", import.meta.url)); // the repo, so `nats` resolves
  const spawnCandidate = (holder: string) =>
    registerCleanup(
      t,
      spawnChild(process.execPath, ["--input-type=module", "-e", CANDIDATE], {
        env: env(holder),
        cwd,
        name: `candidate ${holder}`,
      }),
    );
  const p1 = spawnCandidate("one");
  const p2 = spawnCandidate("two");
  await Promise.all([p1.waitForLine("CANDIDATE one"), p2.waitForLine("CANDIDATE two")]);
  const first = await Promise.race([
    p1.waitForLine(/^ACQUIRED/).then(() => p1),
    p2.waitForLine(/^ACQUIRED/).then(() => p2),
  ]);
  const other = first === p1 ? p2 : p1;
  await sleep(2500); // several TTLs: the holder renews, the standby keeps trying
  const holders = [p1, p2].filter((p) => /^ACQUIRED/m.test(p.output()));
  assert.equal(holders.length, 1, `exactly one holds:\n${p1.output()}\n${p2.output()}`);
  const killedAt = Date.now();
  first.kill("SIGKILL");
  // (the race above left a waiter on the other one's output; poll the output instead of waiting for a line)
  await waitFor("the standby to acquire", () => /^ACQUIRED/m.test(other.output()), {
    timeoutMs: 5000,
    intervalMs: 20,
  });
  const movedMs = Date.now() - killedAt;
  t.diagnostic(`lease moved ${movedMs} ms after the holder was killed (ttl 1000 ms)`);
  assert.ok(movedMs < scaleTimeout(3000));
});
