import assert from "node:assert/strict";
import type { NodeInfo } from "../../runtime/cluster/types.js";
import { JobSpec, type JobSpecInput } from "../../actors/job/spec.js";
import { CoordinatorMachine } from "../../actors/coordinator/machine.js";
import type { Command, Event } from "../../actors/coordinator/model.js";
import type { Leased } from "../../actors/coordinator/protocol.js";
import type { Member } from "../../actors/coordinator/state.js";
import type { Prepared } from "../../actors/trainer/protocol.js";
import type { BatchRef } from "../../actors/ledger/ledger.js";

/** A live node with one free slot. */
export function nodeInfo(node: string, inc = "1", freeSlots = 1): NodeInfo {
  return {
    node,
    inc,
    state: "alive",
    slots: 1,
    freeSlots,
    device: "cpu",
    load: 0,
    lagMs: 0,
    actors: {},
    lastSeen: 0,
    joinedAt: 0,
  };
}

export function member(node: string): Member {
  return { node, trainer: `${node}/job-j.trainer`, loader: `${node}/job-j.loader` };
}

export function prepared(hash = "h0", backend = "cpu"): Prepared {
  return {
    type: "trainer.prepared",
    version: 0,
    hash,
    backend,
    device: "cpu",
    paramCount: 100,
    trainSize: 32,
  };
}

/** A spec for tests: 32 samples, batch 8 (4 steps per epoch), 2 reducers. */
export function testSpec(over: Partial<JobSpecInput> = {}): JobSpec {
  return JobSpec.parse({
    model: "m",
    dataset: "d",
    epochs: 1,
    globalBatch: 8,
    optimizer: { name: "sgd", lr: 0.1 },
    minWorkers: 2,
    maxWorkers: 3,
    reducers: 2,
    evalEvery: 1000,
    hashEvery: 1000,
    checkpointEvery: 1000,
    ...over,
  });
}

type Kind = Command["kind"];
type Of<K extends Kind> = Extract<Command, { kind: K }>;

/** Drives a {@link CoordinatorMachine} on virtual time; collects its commands. */
export class Driver {
  readonly m: CoordinatorMachine;
  now = 1_000_000;
  alive: NodeInfo[];
  out: Command[] = [];

  constructor(nodes: string[], spec = testSpec(), self = "a") {
    this.m = new CoordinatorMachine({ job: "j", spec, nodeId: self });
    this.alive = nodes.map((n) => nodeInfo(n));
  }

  send(e: Event): Command[] {
    const cmds = this.m.step(e, { now: this.now, alive: this.alive });
    this.out.push(...cmds);
    return cmds;
  }

  /** Moves time by `ms` in 200 ms ticks. */
  tick(ms = 200): void {
    for (let t = 0; t < ms; t += 200) {
      this.now += Math.min(200, ms - t);
      this.send({ type: "tick" });
    }
  }

  /** `node` dies: gone from the live nodes, and its death event. */
  kill(node: string): void {
    this.alive = this.alive.filter((n) => n.node !== node);
    this.send({
      type: "membership",
      event: { kind: "dead", node: { ...nodeInfo(node), state: "dead" }, epoch: 2 },
    });
  }

  /** Removes and returns the collected commands of `kind`. */
  take<K extends Kind>(kind: K): Array<Of<K>> {
    const got = this.out.filter((c): c is Of<K> => c.kind === kind);
    this.out = this.out.filter((c) => c.kind !== kind);
    return got;
  }

  /** The one collected command of `kind`. */
  one<K extends Kind>(kind: K): Of<K> {
    const got = this.take(kind);
    assert.equal(got.length, 1, `expected one ${kind}, got ${got.length}`);
    const first = got[0];
    assert.ok(first);
    return first;
  }

  /** Messages told, by type. */
  told(type: string): Array<Of<"tell">> {
    return this.take("tell").filter((c) => c.msg.type === type);
  }

  published(type: string): Array<Of<"publish">> {
    return this.out.filter((c): c is Of<"publish"> => c.kind === "publish" && c.event.type === type);
  }

  get gen(): number {
    return this.m.s.generation;
  }

  /** Acquires the lease and claims an empty record: a fresh job. */
  acquireFresh(term = 7): void {
    this.send({ type: "acquired", term });
    this.one("claim");
    this.send({ type: "claimed", gen: this.gen, saved: undefined });
  }

  /** Fresh placement through to step 1 started on `nodes`. */
  place(nodes: string[]): void {
    this.acquireFresh();
    const pm = this.one("placeMembers");
    assert.deepEqual(pm.nodes, nodes);
    for (const n of nodes)
      assert.equal(
        pm.incs[n],
        this.alive.find((x) => x.node === n)?.inc,
        `the incarnation of ${n} placed on`,
      );
    this.send({
      type: "membersPlaced",
      gen: this.gen,
      members: nodes.map((n) => ({ ...member(n), inc: pm.incs[n] })),
      prepared: nodes.map(() => prepared()),
    });
    const sr = this.one("startReducers");
    this.send({
      type: "reducersReady",
      gen: this.gen,
      reducers: { addresses: sr.spawns.map((s) => `${s.node}/${s.name}`), bounds: sr.bounds },
    });
    this.persisted();
  }

  /** Acknowledges every state write issued so far. */
  persisted(): void {
    for (const p of this.take("persist")) this.send({ type: "persisted", gen: p.gen, seq: p.seq });
  }

  lease(node: string, count: number): Leased {
    this.send({
      type: "message",
      msg: { type: "coord.lease", term: this.m.s.term, member: node, count },
      from: `${node}/$ask`,
    });
    return this.one("reply").msg;
  }

  /** A batch of `n` samples leased by `node`'s loader. */
  batch(node: string, n: number): BatchRef {
    const l = this.lease(node, n).lease;
    assert.ok(l, `no lease for ${node}`);
    const [start, end] = l.ranges[0] ?? [0, 0];
    return { lease: l.id, epoch: l.epoch, start, end: Math.min(end, start + n) };
  }

  /** `node` reports the step in flight (or `step`) done with a batch of `n` samples. */
  done(node: string, n = 4, extra: { hash?: string; step?: number } = {}): void {
    const s = this.m.s;
    const batch = n > 0 ? this.batch(node, n) : null;
    const { step = (s.p?.step ?? 0) + 1, ...rest } = extra;
    this.send({
      type: "message",
      msg: {
        type: "coord.done",
        term: s.term,
        step,
        attempt: s.attempt,
        member: node,
        batch,
        n,
        lossSum: n * 0.5,
        computeMs: 10,
        ...rest,
      },
      from: `${node}/${this.m.cfg.job}.trainer`,
    });
  }

  /** Every reducer applies the commit in flight with the contributors it was told. */
  applyAll(): void {
    const commits = this.told("reducer.commit");
    assert.ok(commits.length > 0, "no commit sent");
    commits.forEach((c, r) => {
      if (c.msg.type !== "reducer.commit") return;
      const { term, step, attempt, contributors, total } = c.msg;
      this.send({
        type: "message",
        msg: { type: "coord.applied", term, step, attempt, r, summed: contributors, n: total },
        from: c.to,
      });
    });
  }
}
