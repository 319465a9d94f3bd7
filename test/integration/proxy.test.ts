import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { test } from "node:test";
import { connect, Events, type NatsConnection } from "nats";
import { startProxy } from "../../tools/chaos/proxy.js";
import { freePort } from "../../tools/natsd/index.js";
import { natsTest, registerCleanup, waitFor, type HasAfter } from "../helpers/index.js";

/** A TCP echo server on 127.0.0.1, closed after the test. */
async function echoServer(t: HasAfter): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  registerCleanup(t, () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  const addr = server.address();
  return typeof addr === "object" && addr ? addr.port : 0;
}

function tcp(t: HasAfter, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
    registerCleanup(t, () => s.destroy());
  });
}

/** Sends `data` and resolves with the echoed bytes and the elapsed time. */
function echo(socket: Socket, data: Buffer, timeoutMs = 10_000): Promise<{ bytes: Buffer; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(
      () => reject(new Error(`echo: got ${got}/${data.length} bytes in time`)),
      timeoutMs,
    );
    const onData = (c: Buffer): void => {
      chunks.push(c);
      got += c.length;
      if (got >= data.length) {
        clearTimeout(timer);
        socket.off("data", onData);
        resolve({ bytes: Buffer.concat(chunks), ms: Date.now() - started });
      }
    };
    socket.on("data", onData);
    socket.write(data);
  });
}

/** Resolves when `socket` closes; rejects after `timeoutMs`. */
function closed(socket: Socket, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const BOUND = { timeout: 20_000 };

async function natsVia(t: HasAfter, url: string): Promise<NatsConnection> {
  const nc = await connect({
    servers: url,
    reconnectTimeWait: 50,
    maxReconnectAttempts: -1,
    ignoreClusterUpdates: true,
    timeout: 2000,
  });
  registerCleanup(t, () => nc.close());
  return nc;
}

async function rttMs(nc: NatsConnection): Promise<number> {
  const started = performance.now();
  await nc.flush();
  return performance.now() - started;
}

natsTest(
  "the proxy passes NATS traffic; cut() disconnects the client and heal() lets it back",
  async (t, nats) => {
    const server = await nats.server({ jetstream: false });
    const proxy = registerCleanup(t, await startProxy({ target: { host: "127.0.0.1", port: server.port } }));
    const nc = await natsVia(t, proxy.url);
    const events: string[] = [];
    void (async () => {
      for await (const s of nc.status()) events.push(s.type);
    })();

    const sub = nc.subscribe("flock.proxy.echo");
    const received: string[] = [];
    void (async () => {
      for await (const m of sub) received.push(new TextDecoder().decode(m.data));
    })();
    nc.publish("flock.proxy.echo", new TextEncoder().encode("one"));
    await waitFor("message through the proxy", () => received.includes("one"));
    assert.equal(proxy.stats.accepted, 1);
    assert.ok(proxy.stats.bytesUp > 0 && proxy.stats.bytesDown > 0);

    proxy.cut();
    await waitFor("client sees the disconnect", () => events.includes(Events.Disconnect));
    await waitFor("reconnect attempts are refused while cut", () => proxy.stats.refused >= 2);
    assert.equal(proxy.stats.isCut, true);
    assert.equal(events.includes(Events.Reconnect), false);

    proxy.heal();
    await waitFor("client reconnects after heal", () => events.includes(Events.Reconnect));
    nc.publish("flock.proxy.echo", new TextEncoder().encode("two"));
    await waitFor("message after heal", () => received.includes("two"));
    assert.equal(proxy.stats.accepted, 2);
    assert.equal(proxy.stats.cuts, 1);
  },
);

natsTest("latency adds delay to each direction, and can be removed", async (t, nats) => {
  const server = await nats.server({ jetstream: false });
  const proxy = registerCleanup(t, await startProxy({ target: { host: "127.0.0.1", port: server.port } }));
  const nc = await natsVia(t, proxy.url);
  const base = await rttMs(nc);
  assert.ok(base < 50, `baseline RTT ${base} ms`);
  proxy.setLatency(100);
  const slow = await rttMs(nc);
  assert.ok(slow >= 190, `RTT with 100 ms each way: ${slow} ms`);
  proxy.setLatency(0, "up");
  const half = await rttMs(nc);
  assert.ok(half >= 95 && half < 190, `RTT with 100 ms down only: ${half} ms`);
  proxy.setLatency(0);
  assert.ok((await rttMs(nc)) < 50);
});

test("bandwidth limit slows a transfer; bytes arrive intact and in order under shaping", BOUND, async (t) => {
  const proxy = registerCleanup(
    t,
    await startProxy({ target: { host: "127.0.0.1", port: await echoServer(t) } }),
  );
  const socket = await tcp(t, proxy.port);
  const data = randomBytes(40_000);
  const fast = await echo(socket, data);
  assert.ok(fast.bytes.equals(data));

  proxy.setBandwidth(100_000, "up"); // 40 kB at 100 kB/s ≈ 400 ms
  const slow = await echo(socket, data);
  assert.ok(slow.bytes.equals(data));
  assert.ok(slow.ms >= 300, `40 kB at 100 kB/s took ${slow.ms} ms`);

  // Larger than the queue bound, with latency and a (generous) limit: backpressure, no loss, order kept.
  proxy.setBandwidth(null);
  proxy.setBandwidth(20_000_000, "down");
  proxy.setLatency(5);
  const big = randomBytes(3 * 1024 * 1024);
  const shaped = await echo(socket, big, 15_000);
  const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
  assert.equal(sha(shaped.bytes), sha(big));
  assert.throws(() => proxy.setBandwidth(0), RangeError);
  assert.throws(() => proxy.setLatency(-1), RangeError);
});

test("several targets: the first reachable one is used, per connection", BOUND, async (t) => {
  const dead = await freePort();
  const live = await echoServer(t);
  let targets = [
    { host: "127.0.0.1", port: dead },
    { host: "127.0.0.1", port: live },
  ];
  const proxy = registerCleanup(t, await startProxy({ target: () => targets, connectTimeoutMs: 500 }));
  const socket = await tcp(t, proxy.port);
  assert.equal((await echo(socket, Buffer.from("hi"))).bytes.toString(), "hi");

  targets = [{ host: "127.0.0.1", port: dead }];
  const orphan = await tcp(t, proxy.port);
  await closed(orphan);
  assert.equal(proxy.stats.upstreamFailures, 1);
});

test("blackhole cut holds new connections silently until heal", BOUND, async (t) => {
  const proxy = registerCleanup(
    t,
    await startProxy({ target: { host: "127.0.0.1", port: await echoServer(t) } }),
  );
  const before = await tcp(t, proxy.port);
  await waitFor("the first connection is forwarded", () => proxy.stats.active === 1);
  const beforeClosed = closed(before);
  proxy.cut("blackhole");
  await beforeClosed; // existing connections are destroyed
  const held = await tcp(t, proxy.port);
  let heldClosed = false;
  let answered = false;
  held.on("close", () => (heldClosed = true));
  held.on("data", () => (answered = true));
  held.write("anyone?");
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(heldClosed || answered, false, "a held connection neither answers nor closes");
  proxy.heal();
  await waitFor("held connection closed on heal", () => heldClosed);
  const after = await tcp(t, proxy.port);
  assert.equal((await echo(after, Buffer.from("back"))).bytes.toString(), "back");
});

test("close() stops listening and drops connections", BOUND, async (t) => {
  const proxy = await startProxy({ target: { host: "127.0.0.1", port: await echoServer(t) } });
  registerCleanup(t, proxy);
  const socket = await tcp(t, proxy.port);
  await waitFor("the connection is forwarded", () => proxy.stats.active === 1);
  const socketClosed = closed(socket);
  await proxy.close();
  await socketClosed;
  await assert.rejects(tcp(t, proxy.port));
  await proxy.close(); // idempotent
});
