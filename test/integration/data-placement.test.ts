/**
 * `file://` data checked at placement, against a real nats-server and two daemons as child
 * processes. Both daemons share this machine's filesystem, so "a node without the file" is made
 * honestly in time: daemon a takes the job, and once the job's state holds an evaluation (a's
 * trainer and evaluator have read the file) the file is deleted and daemon b joins. b's data
 * check finds no file: b gets no trainer, and `flock status` (its JSON and its table) names b
 * and the reason while the job completes on a alone, every sample of every epoch counted once.
 * The job runs 1500 steps so that it is still running when b has started and been checked.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { test } from "node:test";
import type { TrainResult } from "../../actors/api.js";
import { connect } from "nats";
import { decodeJob } from "../../actors/coordinator/codec.js";
import { JOB_STATE_BUCKET } from "../../actors/job/names.js";
import { JetStreamStores } from "../../runtime/store/jetstream.js";
import { formatStatus } from "../../tools/cli/status.js";
import { scaleTimeout, useNatsServer } from "../helpers/index.js";
import {
  daemonWarnings,
  startDaemon,
  startTrain,
  startedDaemons,
  statusCli,
  viewReader,
} from "./cluster-kit.js";

const CLUSTER = "dp";
const examples = join(fileURLToPath(new URL("../../../", import.meta.url)), "examples");
const dir = mkdtempSync(join(tmpdir(), "flock-data-placement-it-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Polls `probe` every 100 ms until it returns a value, or fails after `limitMs` saying `what`. */
async function until<T>(what: string, limitMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const left = Math.max(1, deadline - Date.now());
    const got = await Promise.race([probe().catch(() => undefined), sleep(left, undefined, { ref: false })]);
    if (got !== undefined) return got;
    if (Date.now() > deadline) assert.fail(`${what}: not within ${limitMs} ms`);
    await sleep(100);
  }
}

test(
  "a node without the job's file:// data gets no trainer and says why in flock status; the job completes on the node that has it",
  { timeout: scaleTimeout(900_000) },
  async (t) => {
    const server = await useNatsServer(t, { jetstream: true });
    const csv = join(dir, "flowers.csv");
    copyFileSync(join(examples, "data", "flowers.csv"), csv);
    const job = JSON.parse(readFileSync(join(examples, "flowers.json"), "utf8")) as { dataset: object };
    const jobPath = join(dir, "flowers-placement.json");
    writeFileSync(
      jobPath,
      JSON.stringify({
        ...job,
        epochs: 100,
        evalEvery: 10,
        dataset: { ...job.dataset, source: pathToFileURL(csv).href },
      }),
    );
    await startDaemon(t, [server.url], CLUSTER, "a", ["--log-level", "warn"]);
    const train = await startTrain(t, server.url, CLUSTER, jobPath, [
      "--min-workers",
      "1",
      "--max-workers",
      "2",
    ]);
    const status = await viewReader(t, [server.url], CLUSTER);

    // Once an evaluation is in the job's durable state, a's trainer and evaluator have read the file.
    const nc = await connect({ servers: [server.url] });
    t.after(() => nc.close());
    const stateKv = await new JetStreamStores(nc, { cluster: CLUSTER, timeoutMs: 2000 }).kv(JOB_STATE_BUCKET);
    const evaluated = await until("a first evaluation on a", scaleTimeout(120_000), async () => {
      const entry = await stateKv.get(train.job);
      const saved = entry && decodeJob(entry.value);
      return saved && saved.evals.length > 0 && saved.members.map((x) => x.node).join() === "a"
        ? saved
        : undefined;
    });
    t.diagnostic(`evaluated at step ${evaluated.evals[0]?.step}; deleting the file and starting b`);
    rmSync(csv);
    await startDaemon(t, [server.url], CLUSTER, "b", ["--log-level", "warn"]);
    t.diagnostic(
      `b ready with the job at step ${(await status()).jobs.find((x) => x.id === train.job)?.step}`,
    );
    const refused = await until("b named as lacking the data", scaleTimeout(30_000), async () => {
      const j = (await status()).jobs.find((x) => x.id === train.job);
      return j?.unplaced?.find((u) => u.node === "b") ? j : undefined;
    });
    t.diagnostic(`b refused at step ${refused.step}`);
    assert.match(refused.state, /^(stepping|committing)$/, "the job was still running when b was refused");
    const cli = await statusCli([server.url], CLUSTER);
    const b = cli.jobs.find((x) => x.id === train.job)?.unplaced?.find((u) => u.node === "b");
    assert.match(b?.reason ?? "", /flowers\.csv: cannot be read: ENOENT/);
    assert.match(
      formatStatus(cli),
      new RegExp(`job ${train.job}: no trainer on b: .*flowers\\.csv: cannot be read`),
    );
    t.diagnostic(`status says: ${b?.reason}`);

    const exit = await Promise.race([
      train.proc.exited,
      sleep(scaleTimeout(720_000), undefined, { ref: false }),
    ]);
    assert.equal(exit?.code, 0, `${train.proc.output()}\n${daemonWarnings(startedDaemons)}`);
    const lines = train.proc.stdout().trim().split("\n");
    const result = JSON.parse(lines[lines.length - 1] ?? "") as TrainResult;
    assert.equal(result.status, "completed");
    assert.deepEqual(result.members, ["a"], "b never got a trainer");
    assert.ok(!result.membership.some((r) => r.node === "b" && r.kind === "join"), "b never joined");
    assert.deepEqual(result.samplesPerEpoch, Array<number>(100).fill(480), "480 training rows, each epoch");
    t.diagnostic(
      `completed on a: ${result.steps} steps, accuracy ${result.accuracy}, ${result.wallSeconds} s`,
    );
  },
);
