import { Command, InvalidArgumentError, Option } from "commander";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { resolveJobSpec, type ClusterHandle } from "../../actors/api.js";
import { selectBackend } from "../../actors/compute/backend.js";
import type { Dataset } from "../../actors/compute/datasets.js";
import { dataAccess, fetchStoredSources } from "../../actors/compute/dataset-store-cache.js";
import type { QuantizeDtype, WeightSpec } from "../../actors/compute/quantize.js";
import { loadModelFiles, maskedTestScores, testAccuracy } from "../../actors/compute/quantize-eval.js";
import { pruneWeights, sparsityOf } from "../../actors/compute/prune.js";
import { DEFAULT_MASK_RATE } from "../../actors/job/task-spec.js";
import {
  datasetOfInfo,
  fetchJobSpec,
  fetchStoredModel,
  modelJsonText,
  quantizeModelFiles,
  readModelDir,
  storedModelFiles,
  testDatasetOf,
  writeModelFiles,
  type FlockModelInfo,
  type ModelFiles,
} from "../../actors/job/model-export.js";
import type { JobSpec } from "../../actors/job/spec.js";
import { createLogger } from "../../runtime/log.js";
import type { StoreProvider } from "../../runtime/store/types.js";
import { finetunePruned, type FinetuneRun } from "./export-finetune.js";
import { connectBounded } from "./jobs.js";
import { positiveInt } from "./train.js";
import {
  addNatsAuthOptions,
  clusterName,
  logLevelOption,
  natsUrls,
  usageErrorsExit2,
  type NatsAuthFlags,
} from "./options.js";

/**
 * `flock export JOB_OR_DIR --out DIR [--quantize uint8|float16] [--prune S [--finetune-epochs E]]`:
 * a trained model written again, its weights compressed in the tfjs weight format (pruned, then
 * fine-tuned on the cluster with the pruned values kept at 0), with the size and test accuracy of each.
 * @module
 */

/** Size and test accuracy of one form of a model. */
export interface ModelFigures {
  /** Bytes of `weights.bin`. */
  weightBytes: number;
  /** Bytes of `model.json` + `weights.bin`. */
  totalBytes: number;
  /** Test accuracy, as stock tfjs computes it from the files. */
  accuracy: number;
  /** Fraction of the kernels' values that are exactly 0. */
  sparsity: number;
}

/** What `flock export --json` prints. */
export interface ExportResult {
  source: string;
  out: string;
  quantize?: QuantizeDtype;
  /** The `--prune` target: that fraction of each kernel, smallest magnitudes first, set to 0. */
  prune?: number;
  /** Test samples the accuracies are over. */
  testSize: number;
  before: ModelFigures;
  /** With `finetune`: the pruned float32 model, before fine-tuning. */
  pruned?: ModelFigures;
  /** The fine-tuning job that ran after pruning (`--finetune-epochs`). */
  finetune?: { job: string; epochs: number; steps: number; lr: number };
  after: ModelFigures;
  /** `after.weightBytes / before.weightBytes`. */
  weightRatio: number;
}

/** Options of {@link compressModel}. */
export interface CompressOptions {
  quantize?: QuantizeDtype;
  /** Magnitude-prune each kernel to this sparsity (in (0, 1)) before quantising. */
  prune?: number;
  /** With `prune`: fine-tune the pruned model (zeros kept) before quantising; see `export-finetune.ts`. */
  finetune?: (pruned: ModelFiles, info: FlockModelInfo) => Promise<FinetuneRun>;
}

/** A float32 model to compress, with the dataset whose test split it is scored on. */
export interface SourceModel {
  source: string;
  files: ModelFiles;
  info: FlockModelInfo;
  dataset: Dataset;
  /** The spec of the job that trained it, where known (a job source; a folder holds none). */
  spec?: JobSpec;
}

/** The model of a folder `flock train --out` wrote (float32), with its test split. */
export async function sourceFromDir(dir: string): Promise<SourceModel> {
  const { files, info } = readModelDir(dir);
  await selectBackend("cpu", { requires: "conv" });
  return { source: dir, files, info, dataset: await testDatasetOf(info) };
}

/** The latest scored model of `job` in the cluster's object store, with its spec's test split. */
export async function sourceFromJob(stores: StoreProvider, job: string): Promise<SourceModel> {
  const spec = await fetchJobSpec(stores, job);
  const stored = await fetchStoredModel(stores, job);
  // A flock:// dataset's shards come from the cluster, as for the job's own trainers.
  const data = await fetchStoredSources(spec.dataset, dataAccess(stores));
  const { files, info, dataset } = await storedModelFiles(spec, stored, data);
  return { source: `job://${job}`, files, info, dataset, spec };
}

/** An mlm model's masking as `flock.json` records it (hostile: a file anyone may have edited). */
const MlmMasking = z.strictObject({
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  rate: z.number().gt(0).max(1),
});

/**
 * Test accuracy of a model held in memory (loaded through stock tfjs's decoding): of its labels,
 * or for an mlm model its masked-token accuracy on the positions its job's evaluation masked.
 */
async function accuracyOf(files: ModelFiles, dataset: Dataset, info: FlockModelInfo): Promise<number> {
  const model = await loadModelFiles(files);
  try {
    if (info.task !== "mlm") return testAccuracy(model, dataset);
    const masking = MlmMasking.safeParse(
      info.mlm ?? { seed: datasetOfInfo(info).seed, rate: DEFAULT_MASK_RATE },
    );
    if (!masking.success)
      throw new InvalidArgumentError(`flock.json: mlm: ${z.prettifyError(masking.error)}`);
    return maskedTestScores(model, dataset, masking.data).accuracy;
  } finally {
    model.dispose();
  }
}

/** Reads back the files {@link writeModelFiles} wrote into `dir`, as stock tfjs would. */
function readWritten(dir: string): ModelFiles {
  const json = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as {
    modelTopology: object;
    weightsManifest: { weights: WeightSpec[] }[];
  };
  return {
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData: new Uint8Array(readFileSync(join(dir, "weights.bin"))),
  };
}

/**
 * Writes `source` into `out`, quantised as `opts` says, and scores both: the float32 original
 * from memory and the written files read back from disk, each through stock tfjs's loader.
 */
export async function compressModel(
  source: SourceModel,
  out: string,
  opts: CompressOptions,
): Promise<ExportResult> {
  if (resolve(out) === resolve(source.source)) throw new Error(`--out ${out} is the model's own folder`);
  const before = source.files;
  const pruned =
    opts.prune === undefined
      ? before
      : { ...before, weightData: pruneWeights(before.weightSpecs, before.weightData, opts.prune).data };
  if (opts.finetune && opts.prune === undefined) throw new Error("fine-tuning follows pruning: give prune");
  const run = opts.finetune ? await opts.finetune(pruned, source.info) : undefined;
  const final = run ? run.files : pruned;
  const after = opts.quantize ? quantizeModelFiles(final, opts.quantize) : final;
  const written = writeModelFiles(out, after, {
    ...(run ? run.info : source.info),
    ...(opts.quantize ? { quantization: opts.quantize } : {}),
  });
  const figures = async (files: ModelFiles, weightBytes: number, totalBytes: number, kernels: ModelFiles) => {
    const s = sparsityOf(kernels.weightSpecs, kernels.weightData);
    return {
      weightBytes,
      totalBytes,
      accuracy: await accuracyOf(files, source.dataset, source.info),
      sparsity: s.values === 0 ? 0 : s.zeros / s.values,
    };
  };
  const b = await figures(
    before,
    before.weightData.length,
    before.weightData.length + Buffer.byteLength(modelJsonText(before)),
    before,
  );
  const p = run
    ? await figures(
        pruned,
        pruned.weightData.length,
        pruned.weightData.length + Buffer.byteLength(modelJsonText(pruned)),
        pruned,
      )
    : undefined;
  // The sparsity after is the float32 kernels': quantisation keeps zeros exact (its zero point is a code).
  const a = await figures(readWritten(out), written.bytes.weights, written.bytes.total, final);
  return {
    source: source.source,
    out: resolve(out),
    ...(opts.quantize ? { quantize: opts.quantize } : {}),
    ...(opts.prune === undefined ? {} : { prune: opts.prune }),
    testSize: source.dataset.testSize,
    before: b,
    ...(p && run
      ? { pruned: p, finetune: { job: run.job, epochs: run.epochs, steps: run.steps, lr: run.lr } }
      : {}),
    after: a,
    weightRatio: b.weightBytes === 0 ? 1 : a.weightBytes / b.weightBytes,
  };
}

interface ExportFlags extends NatsAuthFlags {
  out: string;
  quantize?: QuantizeDtype;
  prune?: number;
  finetuneEpochs?: number;
  finetuneLr?: number;
  spec?: string;
  nats?: string;
  cluster: string;
  json?: boolean;
  logLevel: string;
}

/** The `finetune` option the flags ask for: on `cluster` when connected, else on the embedded default. */
function finetuneOption(
  flags: ExportFlags,
  source: SourceModel,
  cluster: ClusterHandle | undefined,
): Pick<CompressOptions, "finetune"> {
  const epochs = flags.finetuneEpochs;
  const spec = flags.spec === undefined ? source.spec : resolveJobSpec(flags.spec);
  if (epochs === undefined || spec === undefined) return {};
  const lr = flags.finetuneLr;
  return {
    finetune: (files, info) =>
      finetunePruned(files, info, {
        spec,
        epochs,
        ...(lr === undefined ? {} : { lr }),
        ...(cluster ? { cluster } : {}),
      }),
  };
}

function positiveNumber(value: string): number {
  const x = Number(value);
  if (!(x > 0 && Number.isFinite(x)))
    throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return x;
}

function sparsityArg(value: string): number {
  const s = Number(value);
  if (!(s > 0 && s < 1))
    throw new InvalidArgumentError(`--prune takes a sparsity between 0 and 1, got "${value}"`);
  return s;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** The result as lines for a person. */
export function formatExport(r: ExportResult): string {
  const row = (what: string, f: ModelFigures) =>
    `  ${what}: weights ${f.weightBytes} bytes (model.json + weights ${f.totalBytes}), test accuracy ${pct(f.accuracy)}, kernels ${pct(f.sparsity)} zeros`;
  return (
    [
      `flock: ${r.source} written to ${r.out}${r.prune === undefined ? "" : `, kernels pruned to ${pct(r.prune)}`}${r.quantize ? ` with ${r.quantize} weights` : ""} (${r.testSize} test samples)`,
      row("before", r.before),
      ...(r.pruned && r.finetune
        ? [
            row("pruned", r.pruned),
            `  fine-tuned: job ${r.finetune.job}, ${r.finetune.epochs} epoch(s), ${r.finetune.steps} steps at lr ${r.finetune.lr}, pruned values kept at 0`,
          ]
        : []),
      row("after ", r.after),
      `  weights ${pct(r.weightRatio)} of float32, accuracy ${((r.after.accuracy - r.before.accuracy) * 100).toFixed(2)} points`,
    ].join("\n") + "\n"
  );
}

/** Registers `flock export`. */
export function registerExportCommand(program: Command): void {
  const cmd = program
    .command("export")
    .description(
      "Write a trained model again, its weights quantised (tfjs format), with size and accuracy before/after",
    )
    .argument(
      "<job-or-dir>",
      "A folder `flock train --out` wrote, or a job id whose model the cluster (--nats) holds",
    )
    .requiredOption("--out <dir>", "Where the model goes (model.json, weights.bin, flock.json)")
    .addOption(
      new Option("--quantize <dtype>", "Store weights as uint8 (affine) or float16").choices([
        "uint8",
        "float16",
      ]),
    )
    .option(
      "--prune <sparsity>",
      "Zero that fraction (0 < s < 1) of each kernel, smallest magnitudes first",
      sparsityArg,
    )
    .option(
      "--finetune-epochs <n>",
      "With --prune: fine-tune the pruned model for n epochs (pruned values kept at 0) before writing it",
      positiveInt("--finetune-epochs"),
    )
    .option("--finetune-lr <lr>", "Learning rate of the fine-tuning (default: the job's)", positiveNumber)
    .option(
      "--spec <example-or-job-file>",
      "The job a folder's model was trained by (a folder holds no spec): fine-tuning reuses it",
    )
    .option(
      "--nats <url>",
      "NATS server URL(s), comma-separated: read a job's model from that cluster (and fine-tune there)",
    )
    .option("--cluster <name>", "Cluster name (subject namespace)", clusterName, "default")
    .option("--json", "Print the result as one JSON object on the last line")
    .addOption(logLevelOption());
  addNatsAuthOptions(cmd);
  usageErrorsExit2(cmd);
  cmd.action(async (what: string, flags: ExportFlags) => {
    const local = existsSync(what) && statSync(what).isDirectory();
    if (!local && !flags.nats)
      cmd.error(`error: ${what} is not a folder; to export a job's model give --nats <url> of its cluster`, {
        exitCode: 2,
        code: "commander.usage",
      });
    const usage = (message: string): never =>
      cmd.error(`error: ${message}`, { exitCode: 2, code: "commander.usage" });
    if (flags.finetuneEpochs !== undefined && flags.prune === undefined)
      usage("--finetune-epochs fine-tunes a pruned model: give --prune <sparsity>");
    if (flags.finetuneEpochs !== undefined && local && flags.spec === undefined)
      usage(
        `${what} holds no job spec: give --spec <example-or-job-file> it was trained by, or a job id and --nats`,
      );
    let cluster: ClusterHandle | undefined;
    try {
      let source: SourceModel;
      if (local) source = await sourceFromDir(resolve(what));
      else {
        const log = createLogger({ cmd: "export" }, flags.logLevel);
        const nats = natsUrls(flags.nats ?? "");
        cluster = await connectBounded({ ...flags, nats, timeoutMs: 10_000 }, log);
        source = await sourceFromJob(cluster.stores, what);
      }
      const result = await compressModel(source, flags.out, {
        ...(flags.quantize ? { quantize: flags.quantize } : {}),
        ...(flags.prune === undefined ? {} : { prune: flags.prune }),
        ...finetuneOption(flags, source, cluster),
      });
      (flags.json ? process.stderr : process.stdout).write(formatExport(result));
      if (flags.json) process.stdout.write(JSON.stringify(result) + "\n");
    } finally {
      await cluster?.close();
    }
  });
}
