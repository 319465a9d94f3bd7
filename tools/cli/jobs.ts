import type { Command } from "commander";
import {
  cancelJob,
  followJob,
  lookupJob,
  type ClusterHandle,
  type JobLookup,
  type TrainResult,
} from "../../actors/api.js";
import { connectCluster } from "../../actors/remote.js";
import { openJobsBucket, readJobRecords, type JobRecord } from "../../runtime/cluster/jobs.js";
import { createLogger, redact, type Logger } from "../../runtime/log.js";
import { createProgress } from "../report/index.js";
import { JobTimeline } from "./follow.js";
import {
  addNatsAuthOptions,
  clusterTargetOptions,
  intIn,
  logLevelOption,
  natsOptions,
  usageErrorsExit2,
  withNats,
  type NatsAuthFlags,
} from "./options.js";
import { printResult, resultExitCode } from "./outcome.js";
import { readStores } from "./stores-read.js";
import { table } from "./table.js";

interface ClusterFlags extends NatsAuthFlags {
  nats?: string[];
  cluster: string;
  timeoutMs: number;
  logLevel?: string;
}

/** What `flock jobs --json` prints: one JSON object. */
export interface JobsListing {
  cluster: string;
  jobs: JobRecord[];
  /** Job records that did not decode (their keys); absent when none. */
  warnings?: string[];
}

/** Registers `flock jobs`, `flock job wait <id>` and `flock job cancel <id>`. */
export function registerJobsCommands(program: Command): void {
  const list = clusterOptions(program.command("jobs").description("List the cluster's jobs")).option(
    "--json",
    "Print one JSON object",
  );
  list.action(async (flags: ClusterFlags & { json?: boolean }) => {
    const listing = await listJobs(withNats(list, flags));
    process.stdout.write(flags.json ? `${JSON.stringify(listing)}\n` : formatJobs(listing));
  });

  const job = program.command("job").description("Follow or cancel one job of the cluster");
  const wait = clusterOptions(
    job.command("wait").description("Follow a job to its end and print its result as `flock train` does"),
  )
    .argument("<id>", "Job id (as `flock train` and `flock jobs` show it)")
    .option("--json", "Print the result as one JSON object on the last line");
  wait.action(async (id: string, flags: ClusterFlags & { json?: boolean }) => {
    const log = createLogger({ cmd: "job wait" }, flags.logLevel ?? "warn");
    const cluster = await connectBounded(withNats(wait, flags), log);
    try {
      const result = await waitForJob(cluster, id, { json: flags.json === true, log });
      process.exitCode = resultExitCode(result);
    } finally {
      await cluster.close();
    }
  });

  const cancel = clusterOptions(
    job.command("cancel").description('End a running job as failed ("cancelled by <you>")'),
  ).argument("<id>", "Job id");
  cancel.action(async (id: string, flags: ClusterFlags) => {
    const log = createLogger({ cmd: "job cancel" }, flags.logLevel ?? "warn");
    const cluster = await connectBounded(withNats(cancel, flags), log);
    try {
      process.exitCode = await cancelAndReport(cluster, id, flags.timeoutMs, log);
    } finally {
      await cluster.close();
    }
  });
}

function clusterOptions(cmd: Command): Command {
  clusterTargetOptions(cmd)
    .option(
      "--timeout-ms <ms>",
      "Give up reaching NATS (cancel: the job's end) after this long",
      intIn(100, 600_000),
      10_000,
    )
    .addOption(logLevelOption());
  addNatsAuthOptions(cmd);
  return usageErrorsExit2(cmd);
}

/** Connects a follower client (an actor system) to the cluster, or fails with a clear error after `--timeout-ms`. */
export async function connectBounded(
  flags: ClusterFlags & { nats: string[] },
  log: Logger,
): Promise<ClusterHandle> {
  const where = redact(flags.nats.join(","));
  let timer: NodeJS.Timeout | undefined;
  const late = new Error(`cannot reach NATS at ${where} within ${flags.timeoutMs} ms (is the cluster up?)`);
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late), flags.timeoutMs);
  });
  try {
    const opts = natsOptions(flags.nats, flags, "flock-job");
    return await Promise.race([connectCluster({ ...opts, cluster: flags.cluster, log }), deadline]);
  } catch (err) {
    if (err === late) throw err;
    throw new Error(`cannot connect to NATS at ${where}: ${redact((err as Error).message)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Follows an existing job to its end and prints it as `flock train` does (progress on stdout, or
 * stderr with `json`; the result lines; with `json` the result as the last stdout line). Rejects
 * with `UnknownJobError` before anything starts when the cluster does not know the job.
 */
export async function waitForJob(
  cluster: ClusterHandle,
  job: string,
  opts: { json: boolean; log: Logger },
): Promise<TrainResult> {
  const found = await lookupJob(cluster.stores, job);
  const out = opts.json ? process.stderr : process.stdout;
  out.write(`flock: following job ${job} (${describeLookup(found)}) on ${cluster.describe}\n`);
  const progress = createProgress(out);
  const timeline = new JobTimeline();
  const result = await followJob(cluster, job, { log: opts.log, onEvent: timeline.follow(progress) });
  printResult(progress, result, opts.json);
  return result;
}

function describeLookup(l: JobLookup): string {
  switch (l.state.kind) {
    case "running":
      return `running, step ${l.state.step}`;
    case "finished":
    case "failed":
      return `already ${l.state.kind}`;
    default:
      return l.coordinator !== undefined
        ? `starting on ${l.coordinator}`
        : (l.line?.state ?? "state unknown");
  }
}

/** Cancels a job and says how it ended; the exit status (0: it ended as cancelled). */
async function cancelAndReport(
  cluster: ClusterHandle,
  job: string,
  timeoutMs: number,
  log: Logger,
): Promise<number> {
  const found = await lookupJob(cluster.stores, job);
  if (found.state.kind === "finished" || found.state.kind === "failed")
    throw new Error(
      `job ${job} already ended (${found.state.kind}${found.state.kind === "failed" ? `: ${found.state.error}` : ""}): nothing to cancel`,
    );
  if (found.coordinator === undefined)
    throw new Error(
      `job ${job} has no live coordinator (its lease is free): nothing can obey a cancel now; try again once a daemon resumes it`,
    );
  const end = await cancelJob(cluster, job, { log, timeoutMs: Math.max(timeoutMs, 30_000) });
  if (end.kind === "failed") {
    process.stdout.write(`flock: job ${job} ended as failed: ${end.error}\n`);
    return 0;
  }
  process.stderr.write(
    `flock: job ${job} ${end.kind === "finished" ? "finished before the cancel took effect" : end.error}\n`,
  );
  return 1;
}

/** Reads the cluster's job records with a plain NATS connection (no actor system: `flock status`'s way). */
async function listJobs(flags: ClusterFlags & { nats: string[] }): Promise<JobsListing> {
  const { jobs, bad } = await readStores(flags, "flock-jobs", (stores) =>
    openJobsBucket(stores).then(readJobRecords),
  );
  const listing: JobsListing = { cluster: flags.cluster, jobs };
  if (bad.length > 0) listing.warnings = [`malformed job records skipped: ${bad.join(", ")}`];
  return listing;
}

/** The human-readable job table: id, state, step, epoch, members, and how long ago it was updated. */
export function formatJobs(l: JobsListing, now = Date.now()): string {
  const lines = table(
    ["JOB", "STATE", "STEP", "EPOCH", "MEMBERS", "UPDATED"],
    l.jobs.map((j) => [
      j.id,
      j.state,
      String(j.step),
      String(j.epoch),
      j.members.join(",") || "-",
      `${(Math.max(0, now - j.updatedAt) / 1000).toFixed(1)}s ago`,
    ]),
    `(no jobs in cluster ${l.cluster})`,
  );
  for (const w of l.warnings ?? []) lines.push(`warning: ${w}`);
  return `${lines.join("\n")}\n`;
}
