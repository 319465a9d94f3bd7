/**
 * Managing jobs from the command line against a real nats-server (JetStream) and a daemon as a
 * child process: a `flock train` client killed mid-job, then `flock job wait` prints the completed
 * result; `flock jobs --json` lists the job; `flock job cancel` ends a second job as failed, and
 * `flock job wait` on it exits non-zero with the cancel's error. Unknown job ids fail at once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { TrainResult } from "../../actors/api.js";
import type { JobsListing } from "../../tools/cli/index.js";
import {
  registerCleanup,
  scaleTimeout,
  spawnChild,
  useNatsServer,
  type ChildHandle,
} from "../helpers/index.js";
import { FLOCK, exitWithin, startDaemon } from "./cluster-kit.js";

const CLUSTER = "jc";

function flock(args: string[], name: string): ChildHandle {
  return spawnChild(process.execPath, [FLOCK, ...args], { name });
}

/** Starts `flock train` and returns it with its job id, once it has printed progress. */
async function startTraining(
  t: { after(fn: () => unknown): void },
  url: string,
): Promise<[ChildHandle, string]> {
  const train = registerCleanup(
    t,
    flock(
      [
        "train",
        "mnist",
        "--nats",
        url,
        "--cluster",
        CLUSTER,
        "--workers",
        "1",
        "--epochs",
        "1",
        "--no-report",
      ],
      "flock train",
    ),
  );
  const [, id] = await train.waitForLine(/\(job (\S+)\)/, scaleTimeout(20_000));
  await train.waitForLine(/step \d+/, scaleTimeout(60_000));
  return [train, id!];
}

test(
  "a killed flock train client: flock job wait prints the result; flock jobs lists it; flock job cancel fails a job",
  { timeout: scaleTimeout(240_000) },
  async (t) => {
    const server = await useNatsServer(t, { jetstream: true });
    const common = ["--nats", server.url, "--cluster", CLUSTER];
    await startDaemon(t, [server.url], CLUSTER, "a", ["--log-level", "warn"]);

    const unknown = flock(["job", "wait", "no-such-job", ...common], "flock job wait (unknown)");
    assert.equal(await exitWithin(unknown, scaleTimeout(20_000)), 1, unknown.output());
    assert.match(unknown.output(), /unknown job "no-such-job"/);

    const [train, job] = await startTraining(t, server.url);
    train.kill("SIGKILL");
    await train.exited;

    const listed = flock(["jobs", ...common, "--json"], "flock jobs");
    assert.equal(await exitWithin(listed, scaleTimeout(20_000)), 0, listed.output());
    const listing = JSON.parse(listed.stdout().trim().split("\n").pop() ?? "") as JobsListing;
    assert.ok(
      listing.jobs.some((j) => j.id === job),
      `flock jobs lists ${job}: ${JSON.stringify(listing)}`,
    );

    const wait = flock(["job", "wait", job, ...common, "--json"], "flock job wait");
    assert.equal(await exitWithin(wait, scaleTimeout(120_000)), 0, wait.output());
    const result = JSON.parse(wait.stdout().trim().split("\n").pop() ?? "") as TrainResult;
    assert.equal(result.job, job);
    assert.equal(result.status, "completed");
    assert.deepEqual(result.samplesPerEpoch, [8000]);
    assert.match(wait.output(), /status completed: accuracy/, "the result lines of flock train");

    const [second, victim] = await startTraining(t, server.url);
    const cancel = flock(["job", "cancel", victim, ...common], "flock job cancel");
    assert.equal(await exitWithin(cancel, scaleTimeout(60_000)), 0, cancel.output());
    assert.match(cancel.stdout(), new RegExp(`job ${victim} ended as failed: cancelled by client-`));
    assert.equal(await exitWithin(second, scaleTimeout(30_000)), 1, "the submitting client fails too");
    assert.match(second.output(), /cancelled by client-/);
    const waitCancelled = flock(["job", "wait", victim, ...common], "flock job wait (cancelled)");
    assert.equal(await exitWithin(waitCancelled, scaleTimeout(30_000)), 1, waitCancelled.output());
    assert.match(waitCancelled.output(), new RegExp(`job ${victim} failed: cancelled by client-`));
    const again = flock(["job", "cancel", victim, ...common], "flock job cancel (ended)");
    assert.equal(await exitWithin(again, scaleTimeout(20_000)), 1, again.output());
    assert.match(again.output(), /already ended \(failed: cancelled by client-/);
  },
);
