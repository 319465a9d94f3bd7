/**
 * The orphan-adoption rule (actors/job/orphans.ts) on virtual time: who adopts a running job that no
 * live coordinator holds, after which grace periods, and what is never adopted.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { VirtualScheduler } from "../../runtime/clock.js";
import {
  DEFAULT_ORPHAN_POLICY,
  adopters,
  decideAdoptions,
  holderGone,
  startWatch,
  type OrphanWatch,
  type Scan,
  type ScannedJob,
  type ViewedNode,
} from "../../actors/job/orphans.js";

const policy = { ...DEFAULT_ORPHAN_POLICY, graceMs: 5_000, startGraceMs: 5_000, escalateEveryMs: 15_000 };
const NODES = ["a", "b", "c", "d", "e"];

function alive(ids: readonly string[], inc = "1"): ViewedNode[] {
  return ids.map((node) => ({ node, inc, state: "alive" as const }));
}

function running(job: string, holder?: string): ScannedJob {
  return { job, state: "running", holder };
}

/** One node's watcher, stepped by hand on a virtual clock. */
class Watcher {
  watch: OrphanWatch;
  constructor(
    readonly nodeId: string,
    private readonly clock: VirtualScheduler,
  ) {
    this.watch = startWatch(clock.now());
  }
  scan(jobs: ScannedJob[], over: Partial<Scan> = {}): string[] {
    const scan: Scan = {
      nodeId: this.nodeId,
      jobs,
      complete: true,
      nodes: alive(NODES),
      local: new Set(),
      now: this.clock.now(),
      ...over,
    };
    const out = decideAdoptions(this.watch, scan, policy);
    this.watch = out.watch;
    return out.adopt;
  }
}

/** Scans every 1 s for `ms` on every watcher; returns who adopted `job`, first time each. */
function runAll(
  clock: VirtualScheduler,
  ws: Watcher[],
  jobs: () => ScannedJob[],
  ms: number,
): Map<string, number> {
  const firstAdopt = new Map<string, number>();
  for (let t = 0; t <= ms; t += 1_000) {
    for (const w of ws)
      if (w.scan(jobs()).length > 0 && !firstAdopt.has(w.nodeId)) firstAdopt.set(w.nodeId, clock.now());
    clock.advance(1_000);
  }
  return firstAdopt;
}

test("an orphan with a free lease is adopted by exactly two nodes (rendezvous), after the grace", () => {
  const clock = new VirtualScheduler(0);
  const ws = NODES.map((n) => new Watcher(n, clock));
  const adopted = runAll(clock, ws, () => [running("j1")], 12_000);
  const expected = adopters("j1", NODES, 2);
  assert.deepEqual([...adopted.keys()].sort(), [...expected].sort());
  for (const at of adopted.values())
    assert.equal(at, 5_000, "adopted once the 5 s grace ran out, not before");
});

test("the ranking is deterministic and spreads jobs over the nodes", () => {
  assert.deepEqual(
    adopters("j1", NODES, 2),
    adopters("j1", [...NODES].reverse(), 2),
    "order of the view is irrelevant",
  );
  const firsts = new Set(Array.from({ length: 40 }, (_, i) => adopters(`job-${i}`, NODES, 1)[0]));
  assert.ok(firsts.size >= 4, `40 jobs spread over ${firsts.size} first choices`);
});

test("a lease held by a live holder means no orphan; a dead or superseded holder does", () => {
  const clock = new VirtualScheduler(0);
  const nodes: ViewedNode[] = [
    { node: "a", inc: "2", state: "alive" },
    { node: "b", inc: "1", state: "dead" },
    { node: "c", inc: "1", state: "alive" },
  ];
  assert.equal(holderGone(nodes, "a:2"), false);
  assert.equal(holderGone(nodes, "a:1"), true, "superseded incarnation");
  assert.equal(holderGone(nodes, "b:1"), true, "dead");
  assert.equal(holderGone(nodes, "zz:1"), false, "unknown node: left to the lease's TTL");
  assert.equal(holderGone(nodes, "node:with:colons:1"), false);
  const w = new Watcher("c", clock);
  const seen: Record<string, string[]> = {};
  for (let t = 0; t <= 10_000; t += 1_000) {
    for (const j of w.scan([running("live", "a:2"), running("old", "a:1"), running("dead", "b:1")], {
      nodes,
    }))
      seen[j] = [...(seen[j] ?? []), String(clock.now())];
    clock.advance(1_000);
  }
  assert.equal(seen.live, undefined);
  // Two alive nodes (a and c): c is among the first two for every job.
  assert.ok(seen.old && seen.dead, JSON.stringify(seen));
});

test("finished and failed jobs are never adopted, however long their lease stays free", () => {
  const clock = new VirtualScheduler(0);
  const ws = NODES.map((n) => new Watcher(n, clock));
  const jobs: ScannedJob[] = [
    { job: "done", state: "finished", holder: undefined },
    { job: "bad", state: "failed", holder: "a:0" },
    { job: "unread", state: undefined, holder: "a:1" },
  ];
  assert.equal(runAll(clock, ws, () => jobs, 120_000).size, 0);
});

test("no adoption where this node already runs a candidate of the job", () => {
  const clock = new VirtualScheduler(0);
  const w = new Watcher(adopters("j1", NODES, 1)[0]!, clock);
  for (let t = 0; t <= 30_000; t += 1_000) {
    assert.deepEqual(w.scan([running("j1")], { local: new Set(["j1"]) }), []);
    clock.advance(1_000);
  }
});

test("the grace restarts when a holder appears in between (a standby took over)", () => {
  const clock = new VirtualScheduler(0);
  const w = new Watcher(adopters("j1", NODES, 1)[0]!, clock);
  clock.advance(10_000); // past the start grace
  assert.deepEqual(w.scan([running("j1")]), [], "first seen orphaned: grace starts");
  clock.advance(4_000);
  assert.deepEqual(w.scan([running("j1", "b:1")]), [], "a live standby holds it now");
  clock.advance(1_000);
  assert.deepEqual(w.scan([running("j1")]), [], "free again: a new grace");
  clock.advance(4_999);
  assert.deepEqual(w.scan([running("j1")]), []);
  clock.advance(1);
  assert.deepEqual(w.scan([running("j1")]), ["j1"]);
});

test("no adoption during the start grace, even for a job orphaned long before", () => {
  const clock = new VirtualScheduler(0);
  const w = new Watcher(adopters("j1", NODES, 1)[0]!, clock);
  const watch = { startedAt: 0, orphanSince: new Map([["j1", -60_000]]) };
  w.watch = watch;
  assert.deepEqual(w.scan([running("j1")]), []);
  clock.advance(4_999);
  assert.deepEqual(w.scan([running("j1")]), []);
  clock.advance(1);
  assert.deepEqual(w.scan([running("j1")]), ["j1"]);
});

test("an orphan nobody takes is offered to one more node per escalation period", () => {
  const clock = new VirtualScheduler(0);
  const ranking = adopters("j1", NODES, NODES.length);
  const third = new Watcher(ranking[2]!, clock);
  const fifth = new Watcher(ranking[4]!, clock);
  const firstAt = runAll(clock, [third, fifth], () => [running("j1")], 60_000);
  assert.equal(firstAt.get(ranking[2]!), 5_000 + 15_000, "third in rank: after one escalation");
  assert.equal(firstAt.get(ranking[4]!), 5_000 + 3 * 15_000, "fifth: after three");
});

test("this node counts as alive before its own heartbeat reaches its view", () => {
  const clock = new VirtualScheduler(0);
  const w = new Watcher("solo", clock);
  clock.advance(10_000);
  w.scan([running("j1")], { nodes: [] });
  clock.advance(5_000);
  assert.deepEqual(w.scan([running("j1")], { nodes: [] }), ["j1"]);
});

test("bounded: at most maxJobsPerPass jobs are looked at, and the memory stays bounded", () => {
  const clock = new VirtualScheduler(0);
  const small = { ...policy, maxJobsPerPass: 3 };
  let watch = startWatch(0);
  const jobs = Array.from({ length: 50 }, (_, i) => running(`j${i}`));
  for (let pass = 0; pass < 20; pass++) {
    const window = [...jobs, ...jobs].slice((pass * 3) % 50, ((pass * 3) % 50) + 3);
    const out = decideAdoptions(
      watch,
      { nodeId: "a", jobs: window, complete: false, nodes: alive(["a"]), local: new Set(), now: clock.now() },
      small,
    );
    assert.ok(out.orphaned <= 3);
    watch = out.watch;
    assert.ok(watch.orphanSince.size <= 12, `memory ${watch.orphanSince.size}`);
    clock.advance(1_000);
  }
  const out = decideAdoptions(
    watch,
    { nodeId: "a", jobs, complete: true, nodes: alive(["a"]), local: new Set(), now: clock.now() },
    small,
  );
  assert.equal(out.orphaned, 3, "a pass with 50 jobs looks at 3");
  assert.ok(out.watch.orphanSince.size <= 3, "a complete pass forgets jobs it did not see");
});
