import { createWriteStream, type WriteStream } from "node:fs";
import type { Command } from "commander";
import type { ClusterHandle } from "../../actors/api.js";
import { jobOf, predict, prepare, type PredictResult } from "../../actors/predictor/index.js";
import type { LedgerStats } from "../../actors/predictor/ledger.js";
import { createLogger } from "../../runtime/log.js";
import { connectBounded } from "./jobs.js";
import {
  addNatsAuthOptions,
  clusterName,
  intIn,
  logLevelOption,
  natsUrls,
  usageErrorsExit2,
  type NatsAuthFlags,
} from "./options.js";

interface PredictFlags extends NatsAuthFlags {
  nats?: string[];
  cluster: string;
  out?: string;
  json?: boolean;
  rangeSize: number;
  rangeTimeoutMs: number;
  timeoutMs: number;
  progressMs: number;
  logLevel?: string;
}

/** Registers `flock predict`. */
export function registerPredictCommand(program: Command): void {
  const cmd = program
    .command("predict")
    .description(
      "Predict every record of INPUT (the model's training format) with a model `flock train --out` wrote or a job of the cluster: one JSON line per record, in input order",
    )
    .argument("<model>", "Folder `flock train --out` wrote, or job://ID (with --nats)")
    .argument(
      "<input>",
      "CSV or JSONL file, as the model was trained on; a label column is scored with --json",
    )
    .option("--nats <urls>", "Run on the cluster's daemons (NATS server URL(s), comma-separated)", natsUrls)
    .option("--cluster <name>", "Cluster name", clusterName, "default")
    .option("--out <file>", "Write the predictions there instead of stdout")
    .option(
      "--json",
      "Print the result (records, accuracy, per-node work) as one JSON object on the last line",
    )
    .option("--range-size <n>", "Records per range handed to a daemon (--nats)", intIn(1, 16_384), 1024)
    .option(
      "--range-timeout-ms <ms>",
      "Hand a range out again when unanswered this long",
      intIn(100, 600_000),
      30_000,
    )
    .option("--timeout-ms <ms>", "Give up reaching NATS after this long", intIn(100, 600_000), 10_000)
    .option(
      "--progress-ms <ms>",
      "Least time between two progress lines on stderr",
      intIn(10, 600_000),
      1_000,
    )
    .addOption(logLevelOption());
  addNatsAuthOptions(cmd);
  usageErrorsExit2(cmd);
  cmd.action(async (model: string, input: string, flags: PredictFlags) => {
    process.exitCode = await runPredict(model, input, flags);
  });
}

async function runPredict(model: string, inputArg: string, flags: PredictFlags): Promise<number> {
  const log = createLogger({ cmd: "predict" }, flags.logLevel ?? "warn");
  // A folder's model and the input are read before connecting: parsing a large input blocks the
  // event loop, and a client that misses heartbeats meanwhile sees the daemons as suspects.
  const prepared = jobOf(model) === undefined ? await prepare({ model, input: inputArg }) : undefined;
  let cluster: ClusterHandle | undefined;
  if (flags.nats) cluster = await connectBounded({ ...flags, nats: flags.nats }, log);
  // The output file is opened only after the model and input check out (predict writes nothing
  // before): a bad input leaves no half-written file behind.
  let file: WriteStream | undefined;
  const sink = (text: string): void => {
    if (flags.out === undefined) {
      process.stdout.write(text);
      return;
    }
    file ??= createWriteStream(flags.out);
    file.write(text);
  };
  const progress = progressLine(flags.progressMs);
  try {
    process.stderr.write(
      `flock: predicting ${inputArg} with ${model} ${cluster ? `on ${cluster.describe}` : "in this process"}\n`,
    );
    const result = await predict({
      ...(prepared ? { prepared } : {}),
      model,
      input: inputArg,
      ...(cluster ? { cluster } : {}),
      write: sink,
      log,
      onProgress: progress,
      run: { rangeSize: flags.rangeSize, timeoutMs: flags.rangeTimeoutMs },
    });
    file ??= flags.out === undefined ? undefined : createWriteStream(flags.out);
    if (file)
      await new Promise<void>((resolve, reject) =>
        file!.end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
    process.stderr.write(`${summary(result)}\n`);
    if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } finally {
    await cluster?.close();
  }
}

/** A throttled progress printer on stderr: records done, and per node the ranges it took. */
function progressLine(everyMs: number): (p: { done: number; total: number; stats?: LedgerStats }) => void {
  let last = 0;
  let lastDone = -1;
  return (p) => {
    const now = Date.now();
    if (p.done === lastDone || (now - last < everyMs && p.done < p.total)) return;
    last = now;
    lastDone = p.done;
    const nodes = p.stats
      ? ` · ${Object.entries(p.stats.nodes)
          .map(([n, c]) => `${n}:${c.taken}`)
          .join(
            " ",
          )} ranges taken · ${p.stats.redone} redone${p.stats.lost.length ? ` · lost ${p.stats.lost.join(",")}` : ""}`
      : "";
    process.stderr.write(`flock: ${p.done}/${p.total} records${nodes}\n`);
  };
}

function summary(r: PredictResult): string {
  const acc =
    r.accuracy === undefined
      ? ""
      : `, accuracy ${(r.accuracy * 100).toFixed(2)}% (${r.correct}/${r.records})`;
  const where = r.cluster
    ? ` on ${Object.keys(r.cluster.nodes).length} node(s), ${r.cluster.ranges} ranges, ${r.cluster.redone} redone`
    : " locally";
  return `flock: predicted ${r.records} records${where} in ${(r.elapsedMs / 1000).toFixed(2)} s (${r.recordsPerSec.toLocaleString("en-US")} records/s)${acc}`;
}
