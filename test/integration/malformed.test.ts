/**
 * Hostile input during training on a real nats-server: while an MNIST job runs on two daemons, a
 * raw NATS client publishes every malformed envelope we could think of to the daemons' node
 * subjects and to the topics, real messages to the wrong actors, forged terms, replays of captured
 * envelopes, absurd chunk frames and a forged `job.finished`. The job must not notice: it
 * completes with the usual accuracy, replicas identical, no daemon dies, no peer is declared
 * dead, and the daemons' counters show each refusal by reason.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Packr } from "msgpackr";
import { connect, type NatsConnection } from "nats";
import { resolveJobSpec, runJob } from "../../actors/api.js";
import { TrainResult } from "../../messages/index.js";
import { IGNORED_MESSAGES_METRIC } from "../../actors/ignored.js";
import { connectCluster } from "../../actors/remote.js";
import { decodeBatch, isBatch } from "../../runtime/transport/batch.js";
import { startNatsServer, type NatsServerHandle } from "../../tools/natsd/index.js";
import { freePorts } from "../../tools/natsd/ports.js";
import { scaleTimeout } from "../helpers/index.js";
import { daemonWarnings, startDaemon, type Daemon } from "./cluster-kit.js";

const CLUSTER = "malformed";
const NODES = ["a", "b"];
const packr = new Packr({ useRecords: false, moreTypes: true, structuredClone: false, mapsAsObjects: true });
let server: NatsServerHandle;

before(async () => {
  server = await startNatsServer({ jetstream: true });
});
after(async () => {
  await server?.stop();
});

/** The subject a message from node `from` to node `to` travels on (`flock.<c>.node.<to>.<from>`). */
function nodeSubject(to: string, from: string): string {
  return `flock.${CLUSTER}.node.${to}.${from}`;
}

/**
 * The sender token a forger would put in the subject: the node its envelope claims, when that is
 * a plausible node id, so the receiver's own checks (not only the sender check) see the envelope.
 */
function claimedSender(value: unknown): string {
  const from = typeof value === "object" && value !== null ? (value as { from?: unknown }).from : undefined;
  const node = typeof from === "string" ? from.split("/")[0] : undefined;
  return node && /^[A-Za-z0-9_-]+$/.test(node) ? node : "x";
}

type Env = Record<string, unknown> & { type: string; from: string; to: string };
interface Captured {
  subject: string;
  data: Uint8Array;
  env: Env;
}

/** Captures real envelopes (a few per type) from everything the cluster publishes, until stopped. */
function capture(nc: NatsConnection): { byType: Map<string, Captured[]>; stop(): void } {
  const byType = new Map<string, Captured[]>();
  const sub = nc.subscribe(`flock.${CLUSTER}.>`, {
    callback: (_err, msg) => {
      const frames = isBatch(msg.data) ? (decodeBatch(msg.data) ?? []) : [msg.data];
      for (const frame of frames) {
        if (frame[0] === 0xc1) continue; // a chunk
        let env: unknown;
        try {
          env = packr.unpack(frame);
        } catch {
          continue;
        }
        if (!isEnv(env)) continue;
        const list = byType.get(env.type) ?? [];
        if (list.length < 3) list.push({ subject: msg.subject, data: frame.slice(), env });
        byType.set(env.type, list);
      }
    },
  });
  return { byType, stop: () => sub.unsubscribe() };
}

function isEnv(v: unknown): v is Env {
  if (typeof v !== "object" || v === null) return false;
  const e = v as Record<string, unknown>;
  return typeof e.type === "string" && typeof e.from === "string" && typeof e.to === "string";
}

const node = (address: string): string => address.slice(0, address.indexOf("/"));
const hostile = { toString: 1, valueOf: "x", constructor: 3 };

/** Every malformed variant of a real envelope: wrong types in each field, bad addresses, hostile maps. */
function malformedVariants(base: Env): unknown[] {
  const out: unknown[] = [];
  const fields = ["v", "type", "from", "to", "id", "corr", "deadline", "inc", "body"];
  for (const f of fields)
    for (const bad of [hostile, 12345, [1, 2], "", true, null, -1e308]) out.push({ ...base, [f]: bad });
  out.push({ ...base, from: "nodename" }, { ...base, to: "nodename" }, { ...base, from: "x.>/y" });
  out.push({ ...base, from: "a/", to: "/b" }, { ...base, v: 2 }, { ...base, v: "1" });
  for (const key of ["toString", "valueOf", "constructor", "hasOwnProperty"]) out.push({ ...base, [key]: 1 });
  out.push(new Map<string, unknown>([...Object.entries(base), ["__proto__", { v: 1 }]]));
  const body = base.body as Record<string, unknown>;
  out.push({ ...base, body: { ...body, toString: "x" } }, { ...base, body: hostile }, { ...base, body: "x" });
  out.push({ ...base, type: "evil.exec", body: { type: "evil.exec" } });
  out.push({ ...base, deadline: Date.now() + 60_000, from: "ghost/$ask", body: { ...body, extra: 1 } });
  return out;
}

/** Non-msgpack bytes, msgpack non-objects, and chunk/batch frames with absurd counts. */
function garbage(): Uint8Array[] {
  const out: Uint8Array[] = [new Uint8Array([0xd9, 0xff, 1]), new Uint8Array([0xc1]), new Uint8Array(0)];
  out.push(
    new TextEncoder().encode("PUB flock.x 0\r\n"),
    Uint8Array.from({ length: 300 }, (_, i) => (i * 37) & 255),
  );
  for (const v of ["a string", 42, [1, 2, 3], null, true, 1e308, new Float32Array(8)])
    out.push(packr.pack(v));
  const chunk = (index: number, count: number, total: number): Uint8Array => {
    const f = new Uint8Array(22 + 8);
    const view = new DataView(f.buffer);
    f[0] = 0xc1;
    f[1] = 1;
    f.set([1, 2, 3, 4, 5, 6, 7, index & 255], 2);
    view.setUint32(10, index, true);
    view.setUint32(14, count, true);
    view.setUint32(18, total, true);
    return f;
  };
  out.push(chunk(0, 0xffffffff, 0xffffffff), chunk(0, 0xffffffff, 100), chunk(5, 2, 100), chunk(0, 0, 0));
  out.push(chunk(1, 1 << 30, 1 << 27), new Uint8Array([0xc1, 0xba, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]));
  out.push(new Uint8Array([0xc1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  return out;
}

/** Publishes the attack; returns what it sent, for the failure message. */
async function attack(nc: NatsConnection, byType: Map<string, Captured[]>): Promise<string[]> {
  const first = (type: string): Captured => {
    const c = byType.get(type)?.[0];
    assert.ok(c, `captured a ${type} (got ${[...byType.keys()].join(", ")})`);
    return c;
  };
  const sent: string[] = [];
  const publish = (to: string, value: unknown, what: string) => {
    const bytes = value instanceof Uint8Array ? value : packr.pack(value);
    nc.publish(nodeSubject(to, claimedSender(value)), bytes);
    sent.push(what);
  };
  /** A real envelope published under another sender's subject: the sender check must drop it. */
  const impersonate = (to: string, value: Env, as: string) => {
    nc.publish(nodeSubject(to, as), packr.pack(value));
    sent.push(`impersonation as ${as}`);
  };
  const step = first("trainer.step");
  const commit = first("reducer.commit");
  const grad = first("reducer.grad");
  const holder = node(step.env.from);
  const other = NODES.find((n) => n !== holder)!;
  const trainers = [...new Set((byType.get("trainer.step") ?? []).map((c) => c.env.to))];
  const reducer = commit.env.to;
  const stepBody = step.env.body as Record<string, unknown>;
  const commitBody = commit.env.body as Record<string, unknown>;
  const huge = 2 ** 52;
  for (const n of NODES) {
    for (const g of garbage()) publish(n, g, "garbage");
    for (const v of malformedVariants({ ...step.env, to: `${n}/job-x.trainer` })) publish(n, v, "malformed");
  }
  for (const t of trainers) {
    // Forged terms: a huge one claiming the holder's node, the real one from another node.
    publish(node(t), { ...step.env, to: t, body: { ...stepBody, term: huge } }, "huge term (holder)");
    publish(
      node(t),
      { ...step.env, to: t, from: `${other}/x`, body: { ...stepBody } },
      "term from non-holder",
    );
    // Real messages delivered to the wrong actor kind, as tells and as asks.
    publish(node(t), { ...grad.env, to: t }, "grad to trainer");
    publish(
      node(t),
      { ...grad.env, to: t, deadline: Date.now() + 30_000, from: `${other}/$ask` },
      "ask grad",
    );
    publish(node(t), { ...commit.env, to: t }, "commit to trainer");
    impersonate(node(t), step.env, other);
  }
  publish(node(reducer), { ...commit.env, body: { ...commitBody, term: huge } }, "huge commit term");
  publish(node(reducer), { ...commit.env, from: `${other}/x` }, "commit from non-holder");
  publish(node(reducer), { ...step.env, to: reducer }, "step to reducer");
  publish(node(reducer), { ...step.env, to: reducer, deadline: Date.now() + 30_000 }, "ask step of reducer");
  // Replays of captured envelopes (all of them stale by now); coordinator loads and prepares are
  // not replayed: a replay of the current term's load would revert a reducer (see the report).
  for (const [type, list] of byType)
    if (type !== "reducer.load" && type !== "trainer.prepare")
      for (const c of list) {
        nc.publish(c.subject, c.data);
        sent.push(`replay ${type}`);
      }
  // Topics: the same garbage, and a forged job.finished that fails its schema.
  const topics = [...new Set([...byType.values()].flat().map((c) => c.subject))].filter((s) =>
    s.includes(".topic."),
  );
  for (const subject of topics) {
    for (const g of garbage()) nc.publish(subject, g);
    nc.publish(subject, packr.pack({ v: hostile, type: "job.finished" }));
  }
  const events = topics.find((s) => s.endsWith(".events"));
  assert.ok(events, `an events topic among ${topics.join(", ")}`);
  const job = events.split(".").slice(-2)[0]!;
  for (const result of [{ status: "completed", accuracy: 1 }, hostile, null])
    nc.publish(
      events,
      packr.pack({
        v: 1,
        type: "job.finished",
        from: `${holder}/$topic`,
        to: "*/$topic/x",
        id: "f1",
        body: { type: "job.finished", job, result },
      }),
    );
  // A real parameter slice of a reducer that does not live on `other`, published as `other`'s
  // (its own subject, its own sender): trainers must not take parameters from a non-reducer.
  const slice = byType.get("params.slice")?.[0];
  assert.ok(slice, "captured a params.slice");
  const addresses = (stepBody["reducers"] as { addresses: string[] }).addresses;
  const r = addresses.findIndex((a) => node(a) !== other);
  assert.ok(r >= 0, `a reducer not on ${other} among ${addresses.join(", ")}`);
  const sliceBody = slice.env.body as Record<string, unknown>;
  nc.publish(
    `flock.${CLUSTER}.from.${other}${slice.subject.slice(slice.subject.indexOf(".topic."))}`,
    packr.pack({ ...slice.env, from: `${other}/$topic`, id: "f3", body: { ...sliceBody, r } }),
  );
  sent.push("a params.slice from a node that is not its reducer's");
  // A well-formed job.finished from a member that does not hold the job's lease (as a node's own
  // credentials allow): the submitter must not believe it (its fake accuracy would show).
  const fake: TrainResult = {
    status: "completed",
    job,
    name: "forged",
    epochs: 2,
    steps: 1,
    accuracy: 0.0123,
    loss: 9,
    backend: "forged",
    samplesPerEpoch: [1, 1],
    replicasConsistent: true,
    hashChecks: 0,
    hashMismatches: [],
    commitAudit: { checked: 0, mismatches: [] },
    membershipChanges: 0,
    wallSeconds: 1,
    members: [other],
    recoverySeconds: [],
    ledgerAudit: { epochs: [], exact: true },
    membership: [],
    evals: [],
  };
  assert.ok(TrainResult.safeParse(fake).success, "the forged result passes the schema");
  const prefix = `flock.${CLUSTER}.from.`;
  const fromOther = `${prefix}${other}${events.slice(events.indexOf(".topic."))}`;
  nc.publish(
    fromOther,
    packr.pack({
      v: 1,
      type: "job.finished",
      from: `${other}/$topic`,
      to: `*/$topic/${events.slice(events.indexOf(".topic.") + 7)}`,
      id: "f2",
      body: { type: "job.finished", job, result: fake },
    }),
  );
  sent.push("well-formed job.finished from a non-holder");
  await nc.flush();
  return sent;
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

function sum(daemonsText: string[], name: string, label = "reason"): Record<string, number> {
  const out: Record<string, number> = {};
  for (const text of daemonsText)
    for (const line of text.split("\n")) {
      if (!line.startsWith(`${name}{`)) continue;
      const m = line.match(new RegExp(`${label}="([^"]*)"`));
      const v = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (m?.[1] !== undefined) out[m[1]] = (out[m[1]] ?? 0) + v;
    }
  return out;
}

test("malformed envelopes during training change nothing", { timeout: scaleTimeout(240_000) }, async (t) => {
  const ports = await freePorts(NODES.length);
  const daemons: Daemon[] = [];
  for (const [i, id] of NODES.entries())
    daemons.push(
      await startDaemon(t, [server.url], CLUSTER, id, [
        "--metrics-port",
        String(ports[i]),
        "--log-level",
        "warn",
      ]),
    );
  const raw = await connect({ servers: server.url });
  t.after(() => raw.close());
  const cap = capture(raw);
  const c = await connectCluster({ servers: server.url, cluster: CLUSTER });
  t.after(() => c.close());
  const deadline = Date.now() + scaleTimeout(15_000);
  while (c.aliveNodes().length < NODES.length) {
    assert.ok(Date.now() < deadline, `only ${c.aliveNodes().length} nodes alive`);
    await sleep(100);
  }
  let attacked: Promise<string[]> | undefined;
  const spec = resolveJobSpec("mnist", { minWorkers: 2, maxWorkers: 2, seed: 7 });
  const result = await runJob(c, spec, {
    onEvent: (e) => {
      if (e.type !== "job.step" || e.step !== 15 || attacked) return;
      cap.stop();
      attacked = attack(raw, cap.byType);
    },
  });
  const sent = await attacked;
  assert.ok(sent && sent.length > 100, "the attack ran");
  const why = () => daemonWarnings(daemons);
  assert.equal(result.status, "completed", why());
  assert.ok(result.accuracy >= 0.9, `accuracy ${result.accuracy} (0.0123 is the forged job.finished's)`);
  assert.notEqual(result.name, "forged", "the forged job.finished from a non-holder was not believed");
  assert.equal(result.replicasConsistent, true, `hash mismatches: ${JSON.stringify(result.hashMismatches)}`);
  assert.deepEqual(
    result.membership.filter((m) => m.kind === "death" || m.kind === "failover"),
    [],
    "no peer declared dead",
  );
  for (const d of daemons)
    assert.equal(
      await Promise.race([d.proc.exited.then(() => "exited"), sleep(0, "running")]),
      "running",
      d.id,
    );
  const texts = await Promise.all(ports.map((p) => scrape(p)));
  const bad = sum(texts, "flock_bad_input_total");
  for (const reason of ["undecodable", "bad-envelope", "unknown-type", "schema", "sender-mismatch"])
    assert.ok((bad[reason] ?? 0) > 0, `bad input ${reason}: ${JSON.stringify(bad)}`);
  assert.ok(
    (bad["chunk-malformed"] ?? 0) + (bad["chunk-overflow"] ?? 0) + (bad["oversized"] ?? 0) > 0,
    `absurd chunk frames refused: ${JSON.stringify(bad)}`,
  );
  assert.equal(bad["internal-error"], undefined, `nothing threw in delivery: ${JSON.stringify(bad)}`);
  const ignored = sum(texts, IGNORED_MESSAGES_METRIC);
  t.diagnostic(`sent ${sent.length}; bad input ${JSON.stringify(bad)}; ignored ${JSON.stringify(ignored)}`);
  for (const reason of ["unknown-term", "not-lease-holder", "unknown-type", "not-its-reducer"])
    assert.ok((ignored[reason] ?? 0) > 0, `ignored ${reason}: ${JSON.stringify(ignored)}`);
});
