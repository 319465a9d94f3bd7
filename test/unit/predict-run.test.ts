/**
 * The client's shell of a distributed prediction run on virtual time, with predictors faked
 * behind its port: the output is one line per record in input order, identical to predicting the
 * whole input at once, when a node dies mid-run (its ranges are redone elsewhere), when a node
 * answers for another, and the run gives up when no predictor is ever ready.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { PredictInput } from "../../actors/predictor/input.js";
import { formatLines, PREDICT_BATCH } from "../../actors/predictor/predict.js";
import type { PredictorResult } from "../../actors/predictor/protocol.js";
import { runOnCluster, type PredictorPort, type RangeRequest } from "../../actors/predictor/run.js";
import { VirtualScheduler } from "../../runtime/clock.js";

const CLASSES = ["no", "yes"];
const N = 3000;

/** An input of N records with one feature each; a record's class probabilities are a function of it. */
function makeInput(): PredictInput {
  const x = Float64Array.from({ length: N }, (_, i) => (i * 37) % 101);
  return { file: "mem", n: N, x, truth: Int32Array.from(x, (v) => (v > 50 ? 1 : 0)) };
}

function probsOf(x: Float64Array): Float32Array {
  const out = new Float32Array(x.length * 2);
  x.forEach((v, i) => {
    out[2 * i + 1] = v / 100;
    out[2 * i] = 1 - v / 100;
  });
  return out;
}

interface FakeNode {
  alive: boolean;
  /** Ranges it was asked for. */
  asked: number;
  /** Answers as this node (a liar answers as another). */
  answerAs?: string;
}

/** Predictors on virtual time: each answer takes `delayMs`; a dead node never answers. */
function fakePort(s: VirtualScheduler, nodes: Record<string, FakeNode>, delayMs = 20): PredictorPort {
  return {
    alive: () => Object.keys(nodes).filter((n) => nodes[n]!.alive),
    start: async () => s.sleep(5),
    async predict(node: string, req: RangeRequest): Promise<PredictorResult> {
      const me = nodes[node]!;
      me.asked++;
      await s.sleep(delayMs);
      if (!me.alive) return new Promise<PredictorResult>(() => undefined); // its process is gone
      return {
        type: "predictor.result",
        run: "r",
        range: req.range,
        attempt: req.attempt,
        node: me.answerAs ?? node,
        probs: probsOf(req.x),
      };
    },
    close: () => Promise.resolve(),
  };
}

async function drive<T>(s: VirtualScheduler, run: Promise<T>, limitMs: number): Promise<T> {
  let settled = false;
  void run.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let t = 0; t < limitMs && !settled; t += 10) await s.runFor(10, 10);
  return run;
}

test("a node dies mid-run: its ranges are redone elsewhere; one line per record, in order, as if predicted at once", async () => {
  const s = new VirtualScheduler();
  const input = makeInput();
  const nodes: Record<string, FakeNode> = {
    a: { alive: true, asked: 0 },
    b: { alive: true, asked: 0 },
    c: { alive: true, asked: 0 },
  };
  let out = "";
  let killedAt = -1;
  const run = runOnCluster(fakePort(s, nodes), input, CLASSES, (t) => (out += t), {
    scheduler: s,
    rangeSize: PREDICT_BATCH,
    timeoutMs: 5_000,
    pollMs: 50,
    onProgress: (p) => {
      if (killedAt < 0 && p.done >= N / 4) {
        killedAt = p.done;
        nodes.b!.alive = false;
      }
    },
  });
  const result = await drive(s, run, 60_000);
  assert.ok(killedAt > 0 && killedAt < N, "b died mid-run");
  assert.equal(
    out,
    formatLines(CLASSES, probsOf(input.x), N),
    "the same lines as one prediction of the whole input",
  );
  assert.equal(out.split("\n").length - 1, N);
  assert.deepEqual(result.stats.lost, ["b"]);
  assert.ok(result.stats.redone >= 1, "b had ranges in flight when it died");
  assert.ok(result.stats.nodes.b!.taken > result.stats.nodes.b!.answered);
  assert.equal(result.stats.ranges, Math.ceil(N / PREDICT_BATCH));
  const expected = Array.from(input.truth!).filter(
    (t, i) => t === (probsOf(input.x)[2 * i + 1]! > probsOf(input.x)[2 * i]! ? 1 : 0),
  ).length;
  assert.equal(result.correct, expected);
});

test("a node that answers as another is never believed: its ranges are done by the others", async () => {
  const s = new VirtualScheduler();
  const input = makeInput();
  const nodes: Record<string, FakeNode> = {
    a: { alive: true, asked: 0 },
    m: { alive: true, asked: 0, answerAs: "a" },
  };
  let out = "";
  const result = await drive(
    s,
    runOnCluster(fakePort(s, nodes), input, CLASSES, (t) => (out += t), {
      scheduler: s,
      rangeSize: 256,
      pollMs: 50,
    }),
    60_000,
  );
  assert.equal(out, formatLines(CLASSES, probsOf(input.x), N));
  assert.equal(result.stats.nodes.m!.answered, 0);
  assert.ok(nodes.m!.asked >= 1);
});

test("a slow node's ranges time out and go to another; the output is still exactly once, in order", async () => {
  const s = new VirtualScheduler();
  const input = makeInput();
  const nodes: Record<string, FakeNode> = { a: { alive: true, asked: 0 }, b: { alive: true, asked: 0 } };
  const port = fakePort(s, nodes);
  const slow: PredictorPort = {
    ...port,
    predict: (node, req) =>
      node === "b" ? s.sleep(2_000).then(() => port.predict(node, req)) : port.predict(node, req),
  };
  let out = "";
  const result = await drive(
    s,
    runOnCluster(slow, input, CLASSES, (t) => (out += t), {
      scheduler: s,
      rangeSize: 256,
      timeoutMs: 300,
      pollMs: 50,
    }),
    120_000,
  );
  assert.equal(out, formatLines(CLASSES, probsOf(input.x), N));
  assert.ok(result.stats.timeouts >= 1);
});

test("no predictor ever ready: the run fails, naming the nodes it saw", async () => {
  const s = new VirtualScheduler();
  const port: PredictorPort = {
    alive: () => ["a"],
    start: () => Promise.reject(new Error("no such kind")),
    predict: () => Promise.reject(new Error("unreachable")),
    close: () => Promise.resolve(),
  };
  await assert.rejects(
    drive(
      s,
      runOnCluster(port, makeInput(), CLASSES, () => undefined, {
        scheduler: s,
        nodeWaitMs: 1_000,
        pollMs: 50,
      }),
      10_000,
    ),
    /no predictor ready for 1000 ms \(alive nodes: a\)/,
  );
});
