import { Command, InvalidArgumentError, Option } from "commander";
import { join, resolve } from "node:path";
import { createLogger } from "../../runtime/log.js";
import { connectCluster } from "../../actors/remote.js";
import {
  resolveJobSpec,
  runJob,
  saveJobModel,
  type ClusterHandle,
  type TrainResult,
} from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import { exampleNames } from "../../actors/job/examples.js";
import type { JobSpecInput } from "../../actors/job/spec.js";
import { createProgress, writeTrainingReport } from "../report/index.js";
import { JobTimeline } from "./follow.js";
import { printResult, resultExitCode } from "./outcome.js";
import { connectBounded, waitForJob } from "./jobs.js";
import {
  addNatsAuthOptions,
  natsOptions,
  natsUrls,
  usageErrorsExit2,
  type NatsAuthFlags,
} from "./options.js";

/** Parses a positive integer flag, with an error that names the flag. */
export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${flag} must be a positive integer, got "${value}"`);
    return n;
  };
}

interface TrainFlags extends NatsAuthFlags {
  nats?: string;
  cluster: string;
  workers?: number;
  minWorkers?: number;
  maxWorkers?: number;
  epochs?: number;
  seed?: number;
  json?: boolean;
  resume?: string;
  report: boolean;
  reportDir: string;
  logLevel: string;
  out?: string;
  staleness?: 0 | 1;
  localSteps?: number;
  compression?: "none" | "fp16" | "int8";
  balance?: "equal" | "throughput";
  quantize?: "uint8" | "float16";
}

/** Registers `flock train`. */
export function registerTrainCommand(program: Command): void {
  const cmd = program
    .command("train")
    .description(
      `Train an example (${exampleNames().join(", ")}) or a job file (.json) on the embedded default or a cluster`,
    )
    .argument("[example|job-file]", "Example name or path to a JSON job spec (not with --resume)")
    .option(
      "--nats <url>",
      "NATS server URL(s), comma-separated; without it the job runs on the embedded default",
    )
    .option("--cluster <name>", "Cluster name (subject namespace)", "default")
    .option("--workers <n>", "Exactly n workers (embedded: n nodes)", positiveInt("--workers"))
    .option("--min-workers <n>", "Pause below this many workers", positiveInt("--min-workers"))
    .option("--max-workers <n>", "Grow up to this many workers as nodes join", positiveInt("--max-workers"))
    .option("--epochs <n>", "Epochs to train", positiveInt("--epochs"))
    .option("--seed <n>", "Job seed", (v) => positiveInt("--seed")(String(Number(v) + 1)) - 1)
    .option(
      "--resume <id>",
      "Follow job <id>, already submitted to the cluster (--nats), to its end instead of submitting one (as `flock job wait`)",
    )
    .option("--staleness <k>", "Steps of weight staleness (job spec sync.staleness: 0 or 1)", (v: string) => {
      if (v !== "0" && v !== "1") throw new InvalidArgumentError(`--staleness must be 0 or 1, got "${v}"`);
      return v === "1" ? 1 : 0;
    })
    .option(
      "--local-steps <h>",
      "Local optimizer steps per committed step, averaged by an outer Nesterov optimizer (job spec sync.every, 1 to 64)",
      positiveInt("--local-steps"),
    )
    .addOption(
      new Option("--compression <enc>", "Encoding of gradient slices on the wire").choices([
        "none",
        "fp16",
        "int8",
      ]),
    )
    .addOption(
      new Option("--balance <how>", "Batch shares per member: equal, or by measured throughput").choices([
        "equal",
        "throughput",
      ]),
    )
    .option("--json", "Print the result as one JSON object on the last line")
    .option(
      "--out <dir>",
      "Write the final model there: model.json + weights.bin (tfjs LayersModel) and flock.json",
    )
    .addOption(
      new Option(
        "--quantize <dtype>",
        "With --out: store the weights as uint8 or float16 (tfjs format)",
      ).choices(["uint8", "float16"]),
    )
    .option("--no-report", "Do not write the HTML training report")
    .option("--report-dir <dir>", "Where reports go", "reports")
    .addOption(
      new Option("--log-level <level>", "Log level of the structured logs on stderr")
        .choices(["silent", "error", "warn", "info", "debug"])
        .default("warn"),
    );
  addNatsAuthOptions(cmd);
  usageErrorsExit2(cmd);
  cmd.action(async (source: string | undefined, flags: TrainFlags) => {
    const usage = (message: string): never =>
      cmd.error(`error: ${message}`, { exitCode: 2, code: "commander.usage" });
    if (flags.resume !== undefined) {
      if (source !== undefined)
        usage(`give either an example or job file, or --resume ${flags.resume}, not both`);
      if (!flags.nats) usage("--resume follows a job on a cluster: give --nats <url>");
      process.exitCode = resultExitCode(await resume(flags.resume, flags));
      return;
    }
    if (source === undefined) usage("missing required argument 'example|job-file' (or --resume <id>)");
    if (flags.quantize !== undefined && flags.out === undefined)
      usage("--quantize applies to the model --out writes: give --out <dir>");
    if (flags.workers !== undefined && (flags.minWorkers !== undefined || flags.maxWorkers !== undefined)) {
      throw new InvalidArgumentError("use either --workers or --min-workers/--max-workers, not both");
    }
    const result = await train(source!, flags);
    process.exitCode = resultExitCode(result);
  });
}

/** `flock train --resume <id>`: what `flock job wait <id>` does, with this command's flags. */
async function resume(job: string, flags: TrainFlags): Promise<TrainResult> {
  const log = createLogger({ cmd: "train" }, flags.logLevel);
  const cluster = await connectBounded(
    {
      ...flags,
      nats: natsUrls(flags.nats ?? ""),
      cluster: flags.cluster,
      timeoutMs: RESUME_CONNECT_TIMEOUT_MS,
    },
    log,
  );
  try {
    return await waitForJob(cluster, job, { json: flags.json === true, log });
  } finally {
    await cluster.close();
  }
}

/** How long `--resume` tries to reach NATS before it says so. */
const RESUME_CONNECT_TIMEOUT_MS = 10_000;

async function train(source: string, flags: TrainFlags): Promise<TrainResult> {
  const log = createLogger({ cmd: "train" }, flags.logLevel);
  const spec = resolveJobSpec(source, {
    epochs: flags.epochs,
    seed: flags.seed,
    minWorkers: flags.workers ?? flags.minWorkers,
    maxWorkers:
      flags.workers ??
      flags.maxWorkers ??
      (flags.minWorkers !== undefined ? Math.max(flags.minWorkers, 2) : undefined),
    ...syncOverride(flags),
    ...(flags.compression === undefined ? {} : { compression: flags.compression }),
    ...(flags.balance === undefined ? {} : { balance: flags.balance }),
  });
  const out = flags.json ? process.stderr : process.stdout;
  let cluster: ClusterHandle;
  let embedded: EmbeddedCluster | undefined;
  if (flags.nats) {
    const opts = natsOptions(natsUrls(flags.nats), flags, "flock-train");
    cluster = await connectCluster({ ...opts, cluster: flags.cluster, log });
  } else {
    embedded = await EmbeddedCluster.start({ nodes: spec.maxWorkers, cluster: flags.cluster, log });
    cluster = embedded.handle;
  }
  out.write(
    `flock: training ${spec.name} (job ${spec.id}) on ${cluster.describe}, ${spec.minWorkers}–${spec.maxWorkers} workers, ${spec.epochs} epoch(s)\n`,
  );
  const progress = createProgress(out);
  const timeline = new JobTimeline();
  try {
    const result = await runJob(cluster, spec, {
      log,
      onEvent: timeline.follow(progress),
    });
    let report: string | undefined;
    if (flags.report) {
      const dir = resolve(join(flags.reportDir, spec.id!));
      const files = await writeTrainingReport(
        timeline.reportInput(spec, result, {
          example: source,
          transport: cluster.describe,
          minWorkers: spec.minWorkers,
          maxWorkers: spec.maxWorkers,
          epochs: spec.epochs,
          globalBatch: spec.globalBatch,
          optimizer: `${spec.optimizer.name} lr=${spec.optimizer.lr}`,
          seed: spec.seed,
        }),
        dir,
      );
      report = files.htmlPath;
    }
    let model: string | undefined;
    if (flags.out !== undefined && result.status === "completed") {
      model = resolve(flags.out);
      const saved = await saveJobModel(
        cluster,
        spec,
        result,
        model,
        flags.quantize ? { quantize: flags.quantize } : {},
      );
      const how = flags.quantize ? `, ${flags.quantize} weights: ${saved.bytes.weights} bytes` : "";
      out.write(`flock: model written to ${model} (model.json, weights.bin, flock.json${how})\n`);
    }
    // The JSON line also says where the model went (printResult spreads what it is given).
    const shown: TrainResult = model === undefined ? result : Object.assign({ model }, result);
    printResult(progress, shown, flags.json === true, report);
    return result;
  } finally {
    await cluster.close();
  }
}

/** The `sync` of the job from `--staleness` and `--local-steps` (nothing when neither is given). */
function syncOverride(flags: Pick<TrainFlags, "staleness" | "localSteps">): { sync?: JobSpecInput["sync"] } {
  if (flags.staleness === undefined && flags.localSteps === undefined) return {};
  return {
    sync: {
      ...(flags.staleness === undefined ? {} : { staleness: flags.staleness }),
      ...(flags.localSteps === undefined ? {} : { every: flags.localSteps }),
    },
  };
}
