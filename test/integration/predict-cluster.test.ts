/**
 * `flock predict` against a real nats-server and three `flock daemon` child processes: a model
 * trained on the cluster (`flock train --out`) reproduces its reported test accuracy through
 * `flock predict --json`; predicting a large input with `--nats` while one daemon is SIGKILLed
 * mid-run writes exactly one line per record, in order, identical to the local `flock predict`
 * (the killed node had taken ranges, and some were redone elsewhere); `job://ID` predicts the
 * same lines from the cluster's stored model; bad input exits non-zero before any output.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { test } from "node:test";
import type { PredictResult } from "../../actors/predictor/index.js";
import { flowersCsv } from "../../examples/data/generate.js";
import {
  registerCleanup,
  scaleTimeout,
  spawnChild,
  useNatsServer,
  type ChildHandle,
} from "../helpers/index.js";
import { FLOCK, daemonWarnings, exitWithin, startDaemon, startedDaemons } from "./cluster-kit.js";

const CLUSTER = "pr";
const root = fileURLToPath(new URL("../../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "flock-predict-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function flock(args: string[], name: string): ChildHandle {
  return spawnChild(process.execPath, [FLOCK, ...args], { name });
}

/** The last stdout line of a finished command, parsed. */
function lastJson<T>(child: ChildHandle): T {
  return JSON.parse(child.stdout().trim().split("\n").at(-1) ?? "{}") as T;
}

/** Runs `flock predict` to its end; asserts exit 0; returns its result and output lines. */
async function predictCli(t: { after(fn: () => unknown): void }, args: string[], name: string) {
  const out = join(dir, `${name.replace(/\W+/g, "-")}.jsonl`);
  const child = registerCleanup(t, flock(["predict", ...args, "--out", out, "--json"], name));
  assert.equal(await exitWithin(child, scaleTimeout(120_000)), 0, child.output());
  return { result: lastJson<PredictResult>(child), lines: readFileSync(out, "utf8"), child };
}

function writeData(): { job: string; train: string; test: string; big: string } {
  const lines = flowersCsv(600).trimEnd().split("\n");
  const [header] = lines;
  const train = join(dir, "train.csv");
  const testFile = join(dir, "test.csv");
  writeFileSync(train, [header, ...lines.slice(1, 481)].join("\n") + "\n");
  writeFileSync(testFile, [header, ...lines.slice(481)].join("\n") + "\n");
  // A large input: every record 40 times (24 000 records), so a kill lands while ranges run.
  const big = join(dir, "big.csv");
  writeFileSync(big, [header, ...Array.from({ length: 40 }, () => lines.slice(1)).flat()].join("\n") + "\n");
  const spec = JSON.parse(readFileSync(join(root, "examples/flowers.json"), "utf8")) as Record<
    string,
    unknown
  >;
  const job = join(dir, "flowers-job.json");
  writeFileSync(
    job,
    JSON.stringify({
      ...spec,
      epochs: 6,
      dataset: {
        source: pathToFileURL(train).href,
        test: pathToFileURL(testFile).href,
        format: "csv",
        label: "species",
      },
    }),
  );
  return { job, train, test: testFile, big };
}

test(
  "flock predict: the export reproduces the test accuracy; --nats with a daemon killed mid-run writes the local output exactly",
  { timeout: scaleTimeout(400_000) },
  async (t) => {
    t.after(() => {
      if (process.exitCode) console.error(daemonWarnings(startedDaemons));
    });
    const server = await useNatsServer(t, { jetstream: true });
    const nats = ["--nats", server.url, "--cluster", CLUSTER];
    for (const id of ["a", "b", "c"])
      await startDaemon(t, [server.url], CLUSTER, id, ["--log-level", "warn"]);
    const data = writeData();
    const modelDir = join(dir, "model");

    const train = registerCleanup(
      t,
      flock(
        ["train", data.job, ...nats, "--workers", "2", "--out", modelDir, "--json", "--no-report"],
        "flock train",
      ),
    );
    assert.equal(await exitWithin(train, scaleTimeout(180_000)), 0, train.output());
    const trained = lastJson<{ status: string; accuracy: number; id?: string; job?: string }>(train);
    assert.equal(trained.status, "completed");
    const jobId = /\(job (\S+)\)/.exec(train.output())?.[1];
    assert.ok(jobId, "flock train names its job");

    // The exported model reproduces the reported test accuracy, and prediction is deterministic.
    const scored = await predictCli(t, [modelDir, data.test], "predict test");
    assert.equal(scored.result.records, 120);
    assert.equal(
      scored.result.accuracy,
      trained.accuracy,
      "flock predict reproduces the reported test accuracy",
    );

    const local = await predictCli(t, [modelDir, data.big], "predict local");
    assert.equal(local.result.mode, "local");
    assert.equal(local.lines.split("\n").length - 1, 24_000);

    // Distributed, with small ranges; b is SIGKILLed as soon as it has taken ranges.
    const outFile = join(dir, "cluster.jsonl");
    const dist = registerCleanup(
      t,
      flock(
        [
          "predict",
          modelDir,
          data.big,
          ...nats,
          "--range-size",
          "64",
          "--progress-ms",
          "50",
          "--out",
          outFile,
          "--json",
        ],
        "predict cluster",
      ),
    );
    const m = await dist.waitForLine(
      /^flock: (\d+)\/24000 records · (?:\S+ )*b:([1-9]\d*) (?:\S+ )*ranges taken/,
      scaleTimeout(60_000),
    );
    const killedAt = Number(m[1]);
    startedDaemons.find((d) => d.id === "b")!.proc.kill("SIGKILL");
    assert.ok(killedAt < 24_000, `b was killed mid-run (at ${killedAt} records)`);
    assert.equal(await exitWithin(dist, scaleTimeout(180_000)), 0, dist.output());
    const run = lastJson<PredictResult>(dist);
    const lines = readFileSync(outFile, "utf8");
    assert.equal(lines.split("\n").length - 1, 24_000, "exactly one line per record");
    assert.ok(lines === local.lines, "identical to the local output, line for line, in order");
    t.diagnostic(`killed b at ${killedAt}/24000 records; the run's ledger: ${JSON.stringify(run.cluster)}`);
    assert.equal(run.mode, "cluster");
    assert.ok(run.cluster?.lost.includes("b"), "b left the run");
    assert.ok((run.cluster?.nodes.b?.taken ?? 0) >= 1, "b had taken ranges");
    assert.ok(
      (run.cluster?.redone ?? 0) >= 1,
      `ranges were redone elsewhere: ${JSON.stringify(run.cluster)}`,
    );
    assert.equal(run.accuracy, local.result.accuracy);

    // The job's model, as the cluster keeps it, predicts the same lines.
    const fromJob = await predictCli(t, [`job://${jobId}`, data.test, ...nats], "predict job");
    assert.equal(fromJob.lines, scored.lines, "job://ID predicts what the exported folder predicts");
  },
);

test("flock predict: bad input and an unknown model exit non-zero, naming the problem, with no output", async (t) => {
  const header = "sepal_length,sepal_width,petal_length,petal_width";
  const modelDir = join(dir, "no-model");
  const bad = join(dir, "bad.csv");
  writeFileSync(bad, `${header}\n1,2,3,4\n1,2,oops,4\n`);
  const unknown = registerCleanup(t, flock(["predict", modelDir, bad, "--json"], "predict unknown model"));
  assert.equal(await exitWithin(unknown, scaleTimeout(30_000)), 1);
  assert.match(unknown.output(), /no such model folder/);
  assert.equal(unknown.stdout(), "");
  // A real model (exported by the test above when it ran first; else trained here quickly).
  const modelOk = join(dir, "model");
  if (!existsSync(join(modelOk, "flock.json"))) {
    const data = writeData();
    const train = registerCleanup(
      t,
      flock(["train", data.job, "--epochs", "1", "--out", modelOk, "--no-report"], "train"),
    );
    assert.equal(await exitWithin(train, scaleTimeout(120_000)), 0, train.output());
  }
  const out = join(dir, "bad-out.jsonl");
  const refused = registerCleanup(
    t,
    flock(["predict", modelOk, bad, "--out", out, "--json"], "predict bad input"),
  );
  assert.equal(await exitWithin(refused, scaleTimeout(30_000)), 1);
  assert.match(refused.output(), /bad\.csv: line 3, field "petal_length": "oops" is not a number/);
  assert.equal(refused.stdout(), "");
  assert.equal(existsSync(out), false, "no output file is started");
});
