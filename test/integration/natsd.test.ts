import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { connect, Events, StringCodec, type NatsConnection } from "nats";
import { NatsServerNotFoundError, NatsServerStartError, startNatsServer } from "../../tools/natsd/index.js";
import { natsTest, registerCleanup, spawnChild, waitFor } from "../helpers/index.js";

const sc = StringCodec();

async function client(
  t: { after(fn: () => unknown): void },
  servers: string | string[],
): Promise<NatsConnection> {
  const nc = await connect({ servers, reconnectTimeWait: 50, maxReconnectAttempts: -1, timeout: 2000 });
  registerCleanup(t, () => nc.close());
  return nc;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

natsTest(
  "starts a server; publish/subscribe round trip; stop kills it and removes temp files",
  async (t, nats) => {
    const server = await nats.server();
    assert.match(server.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(server.running && isAlive(server.pid));
    const nc = await client(t, server.url);
    const sub = nc.subscribe("flock.test.echo", { max: 1 });
    const got = (async () => {
      for await (const m of sub) return sc.decode(m.data);
      return undefined;
    })();
    nc.publish("flock.test.echo", sc.encode("hello"));
    assert.equal(await got, "hello");
    await nc.close();

    const pid = server.pid;
    await server.stop();
    assert.equal(server.running, false);
    assert.equal(isAlive(pid), false);
    assert.equal(existsSync(server.storeDir), false, "temp store dir removed");
    await server.stop(); // idempotent
  },
);

natsTest("JetStream KV create/update with revision (compare-and-set)", async (t, nats) => {
  const server = await nats.server();
  const nc = await client(t, server.url);
  const kv = await nc.jetstream().views.kv("x");
  const r1 = await kv.create("lease", sc.encode("a"));
  await assert.rejects(kv.create("lease", sc.encode("b")), "create on an existing key fails");
  const r2 = await kv.update("lease", sc.encode("c"), r1);
  assert.ok(r2 > r1);
  await assert.rejects(kv.update("lease", sc.encode("d"), r1), "stale revision is refused");
  assert.equal(sc.decode((await kv.get("lease"))!.value), "c");
});

natsTest("maxPayload is honoured and JetStream can be switched off", async (t, nats) => {
  const logDir = await mkdtemp(join(tmpdir(), "flock-natsd-logs-"));
  registerCleanup(t, () => rm(logDir, { recursive: true, force: true }));
  const server = await nats.server({
    maxPayload: 4 * 1024 * 1024,
    jetstream: false,
    logDir,
    serverName: "mp",
  });
  const nc = await client(t, server.url);
  assert.equal(nc.info?.max_payload, 4 * 1024 * 1024);
  assert.ok(!nc.info?.jetstream, "no JetStream advertised");
  assert.match(server.stderr(), /Server is ready/);
  await server.stop();
  assert.match(await readFile(join(logDir, "mp.log"), "utf8"), /Server is ready[^]*Server Exiting/);
});

natsTest("restart keeps port and store dir; the client reconnects and KV data survives", async (t, nats) => {
  const server = await nats.server();
  const nc = await client(t, server.url);
  const kv = await nc.jetstream().views.kv("persist");
  await kv.put("k", sc.encode("v1"));
  const { port, url, monitorUrl } = server;
  const oldPid = server.pid;

  let reconnects = 0;
  void (async () => {
    for await (const s of nc.status()) if (s.type === Events.Reconnect) reconnects += 1;
  })();
  await server.restart();
  assert.equal(server.port, port);
  assert.equal(server.url, url);
  assert.equal(server.monitorUrl, monitorUrl);
  assert.notEqual(server.pid, oldPid);
  await waitFor("client reconnect after restart", () => reconnects === 1, { timeoutMs: 5000 });
  assert.equal(sc.decode((await kv.get("k"))!.value), "v1");

  // kill (no wait) then restart also works, and restart after exit does not signal anything
  server.kill("SIGKILL");
  const exit = await server.exited();
  assert.equal(exit.signal, "SIGKILL");
  assert.equal(server.running, false);
  await server.restart();
  // Requests sent while the client is still disconnected are lost by nats.js (they time out),
  // so wait for the reconnect before reading.
  await waitFor("client reconnect after kill + restart", () => reconnects === 2, { timeoutMs: 5000 });
  assert.equal(sc.decode((await kv.get("k"))!.value), "v1");
});

test("a missing binary fails with install instructions", { timeout: 20_000 }, async () => {
  await assert.rejects(startNatsServer({ binary: "/nonexistent/nats-server" }), (err: unknown) => {
    assert.ok(err instanceof NatsServerNotFoundError);
    assert.match(err.message, /apt-get install -y nats-server/);
    return true;
  });
});

test("a server that exits early is reported with its stderr", { timeout: 20_000 }, async () => {
  const started = Date.now();
  await assert.rejects(startNatsServer({ extraConfig: "this is { not valid" }), (err: unknown) => {
    assert.ok(err instanceof NatsServerStartError, String(err));
    assert.match(err.message, /exited with code/);
    assert.match(err.stderr, /[Pp]arse error|error/);
    return true;
  });
  assert.ok(Date.now() - started < 5000, "early exit is detected without waiting for the deadline");
});

test("await using stops the server", { timeout: 20_000 }, async () => {
  let pid: number;
  {
    await using server = await startNatsServer({ jetstream: false });
    pid = server.pid;
    assert.ok(isAlive(pid));
  }
  assert.equal(isAlive(pid), false);
});

for (const how of ["exit", "SIGTERM"] as const) {
  test(
    `servers are killed when the Node process that started them ends (${how})`,
    { timeout: 20_000 },
    async (t) => {
      const launcher = new URL("../../tools/natsd/index.js", import.meta.url).href;
      const script = `
      const { startNatsServer } = await import(${JSON.stringify(launcher)});
      const s = await startNatsServer();
      console.log("server pid=" + s.pid + " dir=" + s.storeDir);
      ${how === "exit" ? "process.exit(0);" : "setInterval(() => {}, 1000);"}`;
      const child = registerCleanup(t, spawnChild(process.execPath, ["--input-type=module", "-e", script]));
      const m = await child.waitForLine(/server pid=(\d+) dir=(\S+)/);
      const serverPid = Number(m[1]);
      if (how === "SIGTERM") child.kill("SIGTERM");
      const exit = await child.exited;
      if (how === "SIGTERM") assert.equal(exit.signal, "SIGTERM", "default signal behaviour is kept");
      await waitFor(`nats-server ${serverPid} to be gone`, () => !isAlive(serverPid), { timeoutMs: 3000 });
      assert.equal(existsSync(m[2]!), false, "temp dir removed");
    },
  );
}

test(
  "a signal reaches grandchildren: the child that started a server is signalled, not SIGKILLed, and reaps it",
  { timeout: 30_000 },
  async (t) => {
    const launcher = new URL("../../tools/natsd/index.js", import.meta.url).href;
    // B starts a server and idles; A starts B (tracked) and idles. SIGTERM to A must end the server.
    const inner = `
      const { startNatsServer } = await import(${JSON.stringify(launcher)});
      const s = await startNatsServer();
      console.log("server pid=" + s.pid);
      setInterval(() => {}, 1000);`;
    const outer = `
      const { spawn } = await import("node:child_process");
      const { trackProcess } = await import(${JSON.stringify(launcher)});
      const b = spawn(process.execPath, ["--input-type=module", "-e", ${JSON.stringify(inner)}], { stdio: ["ignore", "inherit", "inherit"] });
      trackProcess(b);
      setInterval(() => {}, 1000);`;
    const a = registerCleanup(t, spawnChild(process.execPath, ["--input-type=module", "-e", outer]));
    const m = await a.waitForLine(/server pid=(\d+)/, 15_000);
    const serverPid = Number(m[1]);
    a.kill("SIGTERM");
    await a.exited;
    await waitFor(`nats-server ${serverPid} (a grandchild) to be gone`, () => !isAlive(serverPid), {
      timeoutMs: 5000,
    });
  },
);
