import type { Command } from "commander";
import { spawn, type ChildProcess } from "node:child_process";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { findNatsServerBinary, startNatsServer, type NatsServerHandle } from "../natsd/index.js";
import { createLogger } from "../../runtime/log.js";
import { resolveJobSpec, runJob, type ClusterHandle } from "../../actors/api.js";
import { JobTimeline } from "../cli/follow.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import { connectCluster } from "../../actors/remote.js";
import { createProgress, writeTrainingReport } from "../report/index.js";
import { describeKillRecovery, recoveryFromKill, withKillTimes, type KillTime } from "../report/recovery.js";

const NODES = ["node-1", "node-2", "node-3"];
const flockBin = fileURLToPath(new URL("../../bin/flock.js", import.meta.url));

/** How the demo's nodes run: daemons as child processes on a local nats-server, or the in-process bus. */
interface DemoCluster {
  handle: ClusterHandle;
  describe: string;
  kill(node: string): Promise<void>;
  restart(node: string): Promise<void>;
  close(): Promise<void>;
}

/** Registers `flock demo` (what `npm start` runs). */
export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("Three nodes train MNIST; one is killed mid-job and restarted; the job resizes and finishes")
    .option("--in-process", "Use the in-process bus even when nats-server is installed")
    .option("--report-dir <dir>", "Where the report goes", "reports")
    .action(async (flags: { inProcess?: boolean; reportDir: string }) => {
      const ok = await demo(flags);
      process.exitCode = ok ? 0 : 1;
    });
}

async function demo(flags: { inProcess?: boolean; reportDir: string }): Promise<boolean> {
  const out = process.stdout;
  const cluster = flags.inProcess ? await embedded() : await daemonsOrEmbedded();
  out.write(`flock demo: ${NODES.length} nodes on ${cluster.describe}\n`);
  // Long enough that the restarted node is back in the job well before the end: a restart takes
  // ~4 s (1 s down, up to 2.5 s for its old identity to be proven dead, admission at a step), and
  // two members run ~50 steps/s here.
  const spec = resolveJobSpec("mnist", { minWorkers: 2, maxWorkers: 3, epochs: 4 });
  const totalSteps = Math.ceil((8000 * spec.epochs) / spec.globalBatch);
  const killAt = Math.round(totalSteps * 0.15);
  const progress = createProgress(out);
  const timeline = new JobTimeline();
  let killed = false;
  const kills: KillTime[] = [];
  try {
    const result = await runJob(cluster.handle, spec, {
      log: createLogger({ cmd: "demo" }, "error"),
      onEvent: timeline.follow(progress, (e) => {
        if (e.type === "job.step" && !killed && e.step >= killAt) {
          killed = true;
          progress.event(
            `[${e.t.toFixed(1)}s] step ${e.step}: killing node-3 (SIGKILL), restarting it in 1 s`,
          );
          // The kill's own time: the coordinator's recovery starts only when it sees the death.
          kills.push({ node: "node-3", at: Date.now() });
          void cluster
            .kill("node-3")
            .then(() => new Promise((r) => setTimeout(r, 1000)))
            .then(() => cluster.restart("node-3"))
            .then(
              () => progress.event("node-3 restarted as a new incarnation"),
              (error: Error) => progress.event(`node-3 did not restart: ${error.message}`),
            );
        }
      }),
    });
    const input = timeline.reportInput(spec, result, {
      example: "mnist",
      transport: cluster.describe,
      nodes: NODES.length,
      minWorkers: spec.minWorkers,
      maxWorkers: spec.maxWorkers,
      epochs: spec.epochs,
      globalBatch: spec.globalBatch,
    });
    const files = await writeTrainingReport(
      { ...input, membership: withKillTimes(input.membership, kills) },
      resolve(join(flags.reportDir, `demo-${result.job}`)),
    );
    const recoveries = kills.map((k) => describeKillRecovery(recoveryFromKill(k, result.membership)));
    progress.done([
      `finished: accuracy ${result.accuracy.toFixed(4)} after ${result.steps} steps and ${result.epochs} epochs in ${result.wallSeconds.toFixed(1)} s (backend ${result.backend})`,
      `every sample counted once per epoch: ${result.samplesPerEpoch.join(", ")} of 8000; replicas identical: ${result.replicasConsistent}`,
      `membership changes: ${result.membershipChanges}; recovery: ${recoveries.join("; ") || "n/a"}`,
      `report: ${files.htmlPath}`,
    ]);
    return result.status === "completed";
  } finally {
    await cluster.close();
  }
}

async function daemonsOrEmbedded(): Promise<DemoCluster> {
  try {
    findNatsServerBinary();
  } catch {
    process.stdout.write(
      "flock demo: nats-server is not installed, so the nodes share the in-process bus (apt-get install -y nats-server for real processes)\n",
    );
    return embedded();
  }
  return daemons();
}

async function embedded(): Promise<DemoCluster> {
  const cluster = await EmbeddedCluster.start({ nodes: NODES.length });
  return {
    handle: cluster.handle,
    describe: "the in-process bus (all nodes in this process, trainers in worker threads)",
    kill: (node) => cluster.kill(node),
    restart: async (node) => void (await cluster.startNode(node)),
    close: () => cluster.close(),
  };
}

async function daemons(): Promise<DemoCluster> {
  const server: NatsServerHandle = await startNatsServer({ jetstream: true });
  const cluster = `demo${process.pid}`;
  const children = new Map<string, ChildProcess>();
  const start = (node: string) =>
    new Promise<void>((ok, fail) => {
      const child = spawn(
        process.execPath,
        [
          flockBin,
          "daemon",
          "--nats",
          server.url,
          "--node-id",
          node,
          "--cluster",
          cluster,
          "--log-level",
          "error",
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      children.set(node, child);
      const early = (code: number | null) =>
        fail(new Error(`daemon ${node} exited (${code}) before it was ready`));
      child.once("exit", early);
      child.stdout!.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("ready")) {
          child.off("exit", early);
          ok();
        }
      });
    });
  const stopAll = async () => {
    for (const child of children.values()) child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    for (const child of children.values()) if (child.exitCode === null) child.kill("SIGKILL");
  };
  process.once("exit", () => {
    for (const child of children.values()) child.kill("SIGKILL");
  });
  try {
    await Promise.all(NODES.map(start));
    const handle = await connectCluster({ servers: server.url, cluster });
    const deadline = Date.now() + 10_000;
    while (handle.aliveNodes().length < NODES.length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    return {
      handle,
      describe: `a local nats-server (${server.url}) with ${NODES.length} daemons as child processes`,
      kill: async (node) => void children.get(node)?.kill("SIGKILL"),
      restart: (node) => start(node),
      close: async () => {
        await handle.close();
        await stopAll();
        await server.stop();
      },
    };
  } catch (error) {
    await stopAll();
    await server.stop();
    throw error;
  }
}
