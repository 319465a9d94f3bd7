/**
 * mini-BERT on flock, in one command: masked-LM pre-training of a small transformer encoder on the
 * SpamAssassin bodies across the cluster's workers, then spam/ham fine-tuning from those weights on
 * a small labelled subset, compared with the same classifier trained from scratch on that subset.
 *
 *   npm run example:mini-bert -- [--nats URL] [--json] [--workers N]
 *   node dist/examples/mini-bert/main.js --nats nats://127.0.0.1:4222 --workers 2 --json
 *
 * Without `--nats` it runs on the embedded default (N nodes in this process, one trainer thread
 * each). With `--nats` it runs on `flock daemon`s: the data, the exports and the tokenizer are
 * `file://` URLs under `--dir`, so every daemon must see that folder at the same path (one
 * machine, or a shared file system).
 * @module
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { ClusterHandle } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import { connectCluster } from "../../actors/remote.js";
import { DEFAULT_SIZES, type MiniBertSizes } from "./config.js";
import { writeMiniBertData } from "../../actors/compute/spam-corpus.js";
import { writeMiniBertReport } from "./report.js";
import { runMiniBert, summarize, type MiniBertSummary } from "./workflow.js";

const USAGE = `Usage: npm run example:mini-bert -- [options]
  --nats URL             Run on the flock daemons of this NATS server (default: embedded cluster)
  --cluster NAME         Cluster name of the daemons
  --workers N            Trainers per phase (default 2)
  --json                 Print the result as one JSON object on the last stdout line
  --dir DIR              Data and exported models (default models/mini-bert)
  --report-dir DIR       Report pages (default reports/mini-bert)
  --no-report            Do not write the report
  --labelled N           Labelled training examples, half spam (default 100)
  --test N               Held-out labelled examples (default 400)
  --pretrain N           Unlabelled pre-training bodies (default 3200)
  --pretrain-test N      Unlabelled held-out bodies of the masked-LM evaluation (default 200)
  --chars N              Characters kept of each message (default 160)
  --pretrain-epochs N    Pre-training epochs (default ${DEFAULT_SIZES.pretrainEpochs})
  --finetune-epochs N    Epochs of the fine-tuning and from-scratch jobs (default ${DEFAULT_SIZES.finetuneEpochs})
  --pretrain-lr X        Adam learning rate of pre-training (default ${DEFAULT_SIZES.pretrainLr})
  --pretrain-warmup N    Steps of linear warmup of that rate (default ${DEFAULT_SIZES.pretrainWarmup})
  --pretrain-batch N     Global batch of pre-training (default ${DEFAULT_SIZES.pretrainBatch})
  --finetune-lr X        Adam learning rate of fine-tuning and from scratch (default ${DEFAULT_SIZES.finetuneLr})
  --layers N --heads N --width N --ffn N --max-len N --vocab-size N
                         Model sizes (default ${DEFAULT_SIZES.layers}, ${DEFAULT_SIZES.heads}, ${DEFAULT_SIZES.width}, ${DEFAULT_SIZES.ffn}, ${DEFAULT_SIZES.maxLen}, ${DEFAULT_SIZES.vocabSize})
  --seed N               Seed of the data sample and of every job (default 1)`;

const OPTIONS = {
  nats: { type: "string" },
  cluster: { type: "string" },
  workers: { type: "string", default: "2" },
  json: { type: "boolean", default: false },
  dir: { type: "string", default: "models/mini-bert" },
  "report-dir": { type: "string", default: "reports/mini-bert" },
  "no-report": { type: "boolean", default: false },
  labelled: { type: "string" },
  test: { type: "string" },
  pretrain: { type: "string" },
  "pretrain-test": { type: "string" },
  chars: { type: "string" },
  "pretrain-epochs": { type: "string" },
  "finetune-epochs": { type: "string" },
  "pretrain-lr": { type: "string" },
  "pretrain-warmup": { type: "string" },
  "pretrain-batch": { type: "string" },
  "finetune-lr": { type: "string" },
  layers: { type: "string" },
  heads: { type: "string" },
  width: { type: "string" },
  ffn: { type: "string" },
  "max-len": { type: "string" },
  "vocab-size": { type: "string" },
  seed: { type: "string" },
  help: { type: "boolean", default: false },
} as const;

/** A positive integer flag, or undefined when absent; exits with the usage on anything else. */
function int(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) usageError(`--${name} must be a positive integer, got "${value}"`);
  return n;
}

/** A learning rate flag in (0, 1], or undefined when absent; exits with the usage on anything else. */
function rate(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  if (!(x > 0 && x <= 1)) usageError(`--${name} must be a number in (0, 1], got "${value}"`);
  return x;
}

function usageError(message: string): never {
  process.stderr.write(`mini-bert: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function parse() {
  let values;
  try {
    values = parseArgs({ options: OPTIONS, strict: true }).values;
  } catch (error) {
    usageError((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const sizes: MiniBertSizes = { ...DEFAULT_SIZES };
  const set = (key: keyof MiniBertSizes, n: number | undefined) => {
    if (n !== undefined) sizes[key] = n;
  };
  set("pretrainEpochs", int("pretrain-epochs", values["pretrain-epochs"]));
  set("finetuneEpochs", int("finetune-epochs", values["finetune-epochs"]));
  set("pretrainLr", rate("pretrain-lr", values["pretrain-lr"]));
  set("pretrainWarmup", int("pretrain-warmup", values["pretrain-warmup"]));
  set("pretrainBatch", int("pretrain-batch", values["pretrain-batch"]));
  set("finetuneLr", rate("finetune-lr", values["finetune-lr"]));
  set("layers", int("layers", values.layers));
  set("heads", int("heads", values.heads));
  set("width", int("width", values.width));
  set("ffn", int("ffn", values.ffn));
  set("maxLen", int("max-len", values["max-len"]));
  set("vocabSize", int("vocab-size", values["vocab-size"]));
  set("seed", int("seed", values.seed));
  return {
    values,
    sizes,
    workers: int("workers", values.workers) ?? 2,
    data: {
      labelled: int("labelled", values.labelled),
      test: int("test", values.test),
      pretrain: int("pretrain", values.pretrain),
      pretrainTest: int("pretrain-test", values["pretrain-test"]),
      chars: int("chars", values.chars),
      seed: sizes.seed,
    },
  };
}

function printSummary(out: NodeJS.WritableStream, s: MiniBertSummary): void {
  const f = (n: number, d = 3) => (Number.isFinite(n) ? n.toFixed(d) : String(n));
  out.write(
    [
      `mini-bert: pre-training (${s.pretrainExamples} bodies): masked accuracy ${f(s.pretrainMaskedAccuracy)}, perplexity ${f(s.pretrainPerplexity, 1)}, loss ${f(s.pretrainLossStart)} → ${f(s.pretrainLossEnd)}, ${f(s.samplesPerSec.pretrain, 1)} samples/s`,
      `mini-bert: fine-tuned:   accuracy ${f(s.finetuneAccuracy)} on ${s.testExamples} held-out (${s.labelled} labelled), ${f(s.samplesPerSec.finetune, 1)} samples/s`,
      `mini-bert: from scratch: accuracy ${f(s.scratchAccuracy)} (same data, tokenizer, epochs)`,
      `mini-bert: fine-tuning − scratch = ${f(s.finetuneAccuracy - s.scratchAccuracy)}; ${s.workers} worker(s), ${s.backend}, ${f(s.wallSeconds, 1)} s`,
      ...(s.report ? [`mini-bert: report ${s.report}`] : []),
    ].join("\n") + "\n",
  );
}

async function main(): Promise<void> {
  const started = performance.now();
  const { values, sizes, workers, data: dataOpts } = parse();
  const out = values.json ? process.stderr : process.stdout;
  const dir = resolve(values.dir);
  const data = writeMiniBertData(resolve(dir, "data"), dataOpts);
  out.write(
    `mini-bert: data in ${dir}/data: ${data.pretrain.records} unlabelled bodies, ${data.labelled.records} labelled, ${data.test.records} held out\n`,
  );
  const cluster: ClusterHandle = values.nats
    ? await connectCluster({ servers: values.nats, cluster: values.cluster })
    : (await EmbeddedCluster.start({ nodes: workers, cluster: values.cluster })).handle;
  try {
    const run = await runMiniBert(cluster, data, sizes, { workers, modelsDir: dir, out });
    const summary = summarize(run, data, workers, (performance.now() - started) / 1000);
    if (!values["no-report"]) {
      const settings = { transport: cluster.describe, workers, ...sizes };
      summary.report = await writeMiniBertReport(run, summary, resolve(values["report-dir"]), settings);
    }
    printSummary(out, summary);
    if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await cluster.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `mini-bert: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
