import type { Command } from "commander";
import { createLogger, redact } from "../../runtime/log.js";
import { JetStreamStores } from "../../runtime/store/index.js";
import { NatsTransport } from "../../runtime/transport/index.js";
import { startDashboard } from "../dashboard/index.js";
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

interface DashboardFlags extends NatsAuthFlags {
  nats?: string[];
  cluster: string;
  host: string;
  port: number;
  reportDir: string;
  timeoutMs: number;
  logLevel?: string;
}

/** Registers `flock dashboard`: the live page of a cluster, served until SIGINT or SIGTERM. */
export function registerDashboardCommand(program: Command): void {
  const cmd = clusterTargetOptions(
    program
      .command("dashboard")
      .description("Serve a live web page of the cluster's nodes, jobs and training curves (read-only)"),
  )
    .option("--host <host>", "Address to listen on (keep it on loopback or a trusted network)", "127.0.0.1")
    .option("--port <port>", "Port to listen on (0: any free port)", intIn(0, 65_535), 8080)
    .option(
      "--report-dir <dir>",
      "Where `flock train` writes reports, to link finished jobs to theirs",
      "reports",
    )
    .option("--timeout-ms <ms>", "Give up reaching NATS after this long", intIn(100, 600_000), 10_000)
    .addOption(logLevelOption());
  addNatsAuthOptions(cmd);
  usageErrorsExit2(cmd);
  cmd.action(async (flags: DashboardFlags) => {
    await serve(flags, withNats(cmd, flags).nats);
  });
}

async function serve(flags: DashboardFlags, urls: string[]): Promise<void> {
  const log = createLogger({ cmd: "dashboard" }, flags.logLevel ?? "warn");
  const where = redact(urls.join(","));
  const transport = await NatsTransport.connect({
    ...natsOptions(urls, flags, "flock-dashboard"),
    connectTimeoutMs: flags.timeoutMs,
  }).catch((err: Error) => {
    throw new Error(`cannot connect to NATS at ${where}: ${redact(err.message)}`, { cause: err });
  });
  const stores = new JetStreamStores(transport.connection, { cluster: flags.cluster, timeoutMs: 3000 });
  const dashboard = await startDashboard({
    transport,
    stores,
    cluster: flags.cluster,
    host: flags.host,
    port: flags.port,
    reportDir: flags.reportDir,
    log,
  }).catch(async (err: Error) => {
    await transport.close();
    throw err;
  });
  process.stdout.write(`flock dashboard: ${dashboard.url} (cluster ${flags.cluster}, NATS at ${where})\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await dashboard.close();
  await transport.close();
}
