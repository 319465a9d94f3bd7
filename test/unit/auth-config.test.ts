/**
 * `flock auth init`'s output: each role's permissions allow exactly the subjects it speaks and
 * hears on; the files hold public keys in the config and seeds only in the creds; creds parse.
 * And the receiving side of identity: an envelope or heartbeat under another sender's subject is
 * dropped and counted.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createCodec } from "../../messages/index.js";
import { ActorSystem, type Message } from "../../runtime/actor/index.js";
import { nodeInbox, nodeSubject, topicPattern, topicSubject } from "../../runtime/actor/subjects.js";
import { Membership } from "../../runtime/cluster/index.js";
import { Metrics } from "../../runtime/metrics.js";
import {
  encodeFrame,
  heartbeatSubject,
  deadNoticeSubject,
  type Heartbeat,
} from "../../runtime/cluster/heartbeat.js";
import {
  BadCredsError,
  daemonIdentity,
  InProcBus,
  parseCreds,
  subjectMatches,
} from "../../runtime/transport/index.js";
import { formatAccounts, formatUserCreds, planAuth, type AuthPlan } from "../../tools/auth/config.js";
import { newUserKeys, writeAuthFiles } from "../../tools/auth/command.js";
import { defaultLeaseTtls, type Permissions } from "../../tools/auth/permissions.js";
import { heartbeat } from "../helpers/heartbeats.js";
import { waitFor } from "../helpers/index.js";

const C = "c1";
const plan: AuthPlan = planAuth({
  cluster: C,
  nodes: ["a", "b"],
  leaseTtls: defaultLeaseTtls(),
  keys: newUserKeys,
});
const perms = (identity: string): Permissions => plan.users.find((u) => u.identity === identity)!.permissions;
const allows = (allow: string[], subject: string): boolean => allow.some((p) => subjectMatches(p, subject));

test("a daemon may speak only as itself and hear only what is addressed to it", () => {
  const a = perms("a");
  for (const s of [
    nodeSubject(C, "b", "a"),
    nodeSubject(C, "submitter", "a"),
    topicSubject(C, "job.j1.params", "a"),
  ])
    assert.ok(allows(a.publish, s), s);
  assert.ok(allows(a.publish, heartbeatSubject(C, "a")) && allows(a.publish, deadNoticeSubject(C, "a")));
  for (const s of [
    nodeSubject(C, "a", "b"),
    topicSubject(C, "job.j1.params", "b"),
    heartbeatSubject(C, "b"),
    deadNoticeSubject(C, "b"),
    nodeSubject("other", "b", "a"),
    "$JS.API.STREAM.DELETE.KV_flock_c1_jobs",
    "$KV.flock_other_jobs.x",
  ])
    assert.ok(!allows(a.publish, s), `a must not publish on ${s}`);
  for (const s of [nodeInbox(C, "a"), topicPattern(C, "job.j1.params"), "flock.c1.hb.*", "_INBOX_c1_a.x"])
    assert.ok(allows(a.subscribe, s), s);
  for (const s of [nodeInbox(C, "b"), "_INBOX_c1_b.x", "_INBOX.x"]) assert.ok(!allows(a.subscribe, s), s);
  // Every bucket the cluster uses, by its real stream name.
  for (const s of [
    "KV_flock_c1_jobstate",
    "KV_flock_c1_leases-3000",
    "KV_flock_c1_leases-15000",
    "OBJ_flock_c1_checkpoints",
  ])
    assert.ok(allows(a.publish, `$JS.API.STREAM.INFO.${s}`), s);
});

test("the submitter asks nodes as itself; it cannot heartbeat, publish topics or speak as a node", () => {
  const s = perms("submitter");
  assert.ok(allows(s.publish, nodeSubject(C, "a", "submitter")));
  assert.ok(
    allows(s.subscribe, nodeInbox(C, "submitter")) && allows(s.subscribe, topicPattern(C, "job.j1.events")),
  );
  assert.ok(!allows(s.subscribe, topicPattern(C, "job.j1.params")), "job events only");
  for (const subj of [
    heartbeatSubject(C, "submitter"),
    heartbeatSubject(C, "a"),
    nodeSubject(C, "b", "a"),
    topicSubject(C, "job.j1.events", "submitter"),
    "$KV.flock_c1_jobs.j1",
  ])
    assert.ok(!allows(s.publish, subj), subj);
});

test("the observer publishes no flock subject and writes no bucket", () => {
  const o = perms("observer");
  assert.ok(
    o.publish.every((p) => p.startsWith("$JS.API.") || p.startsWith("$JS.FC.")),
    JSON.stringify(o.publish),
  );
  assert.ok(!o.publish.some((p) => /STREAM\.(CREATE|UPDATE|DELETE|PURGE)|^\$KV\.|^\$O\./.test(p)));
  assert.ok(allows(o.subscribe, "flock.c1.hb.*") && !allows(o.subscribe, nodeInbox(C, "a")));
});

test("the config lists public keys only; each creds file holds its seed, identity and inbox and parses", () => {
  const accounts = formatAccounts(plan);
  for (const u of plan.users) {
    assert.ok(accounts.includes(`nkey: "${u.publicKey}"`), u.identity);
    assert.ok(!accounts.includes(u.seed), "no seed in the server config");
    const creds = parseCreds(formatUserCreds(plan, u));
    assert.deepEqual(creds, {
      seed: u.seed,
      identity: u.identity,
      inboxPrefix: `_INBOX_c1_${u.identity}`,
      role: u.role,
      cluster: C,
    });
  }
  assert.match(accounts, /FLOCK_c1: \{\n\s+jetstream: enabled/);
  assert.throws(() => parseCreds("nothing here"), BadCredsError);
  assert.throws(
    () => parseCreds("-----BEGIN USER NKEY SEED-----\nnot-a-seed\n------END USER NKEY SEED------"),
    BadCredsError,
  );
  const seed = plan.users[0]!.seed;
  const jwtCreds = `-----BEGIN NATS USER JWT-----\neyJhbGciOi.x.y\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
  assert.deepEqual(parseCreds(jwtCreds), { jwt: "eyJhbGciOi.x.y", seed });
});

test("auth init writes server.conf, auth.conf and one creds file per identity, mode 0600, never overwriting", () => {
  const dir = mkdtempSync(join(tmpdir(), "flock-auth-unit-"));
  try {
    const files = writeAuthFiles({ cluster: C, nodes: ["a", "b", "c"], out: dir });
    const names = files.map((f) => f.slice(dir.length + 1)).sort();
    assert.deepEqual(names, [
      "a.creds",
      "auth.conf",
      "b.creds",
      "c.creds",
      "observer.creds",
      "server.conf",
      "submitter.creds",
    ]);
    for (const f of files) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    assert.match(
      readFileSync(join(dir, "server.conf"), "utf8"),
      /^jetstream: enabled\ninclude "auth.conf"$/m,
    );
    assert.throws(() => writeAuthFiles({ cluster: C, nodes: ["a"], out: dir }), /EEXIST/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an envelope under another sender's subject is dropped as sender-mismatch; the real sender's passes", async (t) => {
  const bus = new InProcBus();
  const a = await ActorSystem.start({
    nodeId: "a",
    transport: bus.connect(),
    cluster: C,
    ownsTransport: true,
  });
  const b = await ActorSystem.start({
    nodeId: "b",
    transport: bus.connect(),
    cluster: C,
    ownsTransport: true,
  });
  const raw = bus.connect();
  t.after(() => Promise.all([a.stop(), b.stop(), raw.close()]));
  const codec = createCodec();
  const forged = {
    v: 1,
    type: "sys.ping",
    from: "a/$ask",
    to: "b/$sys",
    id: "f1",
    deadline: Date.now() + 5000,
    body: { type: "sys.ping" },
  };
  raw.publish(b.nodeSubject("b", "z"), codec.encode(forged as never));
  // A from of a third node (y) under z's subject; a from without `/` is refused earlier, as bad-envelope.
  raw.publish(b.nodeSubject("b", "z"), codec.encode({ ...forged, from: "y/$ask" } as never));
  raw.publish(topicSubject(C, "t1", "z"), codec.encode({ ...forged, to: "*/$topic/t1" } as never));
  const got: unknown[] = [];
  b.subscribeTopic(
    "t1",
    b.spawn<Message, undefined>({ receive: (_s, m) => void got.push(m) }, { name: "sink" }),
  );
  await bus.connect().flush();
  raw.publish(topicSubject(C, "t1", "z"), codec.encode({ ...forged, to: "*/$topic/t1" } as never));
  const pong = await a.ref("b/$sys").ask({ type: "sys.ping" }, { timeoutMs: 2000 });
  assert.equal(pong.type, "sys.pong", "a message from its real sender passes");
  await waitFor(
    "four mismatches counted",
    () => b.metrics.byLabel("flock_bad_input_total", "reason")["sender-mismatch"] === 4,
  );
  assert.deepEqual(got, [], "no forged topic message reached the subscriber");
  assert.equal(
    b.metrics.total("flock_messages_out_total"),
    1,
    "b answered the real ask only, never the forged one",
  );
});

test("a heartbeat or dead notice under another node's subject is dropped and counted", async (t) => {
  const bus = new InProcBus();
  const metrics = new Metrics();
  const m = new Membership({
    metrics,
    transport: bus.connect(),
    cluster: C,
    nodeId: "me",
    incarnation: "i1",
    localInfo: () => ({ slots: 1, freeSlots: 1, device: "cpu", load: 0, lagMs: 0, actors: {} }),
  });
  const raw = bus.connect();
  t.after(() => Promise.all([m.stop(), raw.close()]));
  let declaredDead = 0;
  m.onDeclaredDead(() => declaredDead++);
  const hb = (node: string): Heartbeat => heartbeat(node, "x1");
  raw.publish(heartbeatSubject(C, "mallory"), encodeFrame(hb("victim")));
  raw.publish(
    deadNoticeSubject(C, "mallory"),
    encodeFrame({ t: "dead", v: 1, node: "me", inc: "i1", by: "victim" }),
  );
  raw.publish(heartbeatSubject(C, "honest"), encodeFrame(hb("honest")));
  await waitFor("the honest node is seen", () => m.get("honest"));
  assert.equal(m.get("victim"), undefined, "no node was made up from a forged heartbeat");
  assert.equal(declaredDead, 0, "a forged dead notice declares nobody dead");
  assert.equal(m.tracker.hasEnded("me", "i1"), false);
  assert.equal(metrics.byLabel("flock_membership_bad_frames_total", "reason")["sender-mismatch"], 2);
});

test("a daemon runs only as the node, role and cluster its credentials were issued for", () => {
  const byId = (id: string) => {
    const u = plan.users.find((x) => x.identity === id);
    assert.ok(u, id);
    return parseCreds(formatUserCreds(plan, u));
  };
  const a = byId("a");
  assert.deepEqual(daemonIdentity(a, "a", C), { nodeId: "a" });
  assert.deepEqual(daemonIdentity(a, undefined, C), { nodeId: "a" }, "no --node-id: the file's id");
  assert.match(JSON.stringify(daemonIdentity(a, "b", C)), /issued for node \\"a\\", not \\"b\\"/);
  assert.match(JSON.stringify(daemonIdentity(a, "a", "other")), /issued for cluster/);
  assert.match(JSON.stringify(daemonIdentity(byId("submitter"), undefined, C)), /role submitter, not daemon/);
  // A file that states nothing (a JWT .creds of operator mode) binds nothing here; the server decides.
  assert.deepEqual(daemonIdentity({ seed: a.seed }, "b", C), { nodeId: "b" });
  assert.deepEqual(daemonIdentity({ seed: a.seed }, undefined, C), { nodeId: undefined });
});
