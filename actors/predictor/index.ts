/**
 * `flock predict`: one line per input record, in input order, `{ "label", "probs" }`, from a model
 * `flock train --out` wrote or a job of the cluster; locally in this process, or across the
 * cluster's daemons (`run.ts`, `ledger.ts`).
 * @module
 */
import { randomUUID } from "node:crypto";
import type { ClusterHandle } from "../api.js";
import { systemScheduler } from "../../runtime/clock.js";
import { silentLogger, type Logger } from "../../runtime/log.js";
import { SavedModelError } from "../compute/errors.js";
import { readPredictInput, type PredictInput } from "./input.js";
import { checkInfo, openModel, readModelDir, type ModelBundle } from "./model.js";
import { actorPort } from "./port.js";
import { PREDICT_BATCH, countCorrect, formatLines, predictRange } from "./predict.js";
import { PREDICTOR_MESSAGES } from "./protocol.js";
import { runOnCluster, type ClusterRunOptions } from "./run.js";
import { jobModel, jobOf } from "./source.js";
import type { LedgerStats } from "./ledger.js";

export { registerPredictorKind } from "./kind.js";
export { PREDICTOR_MESSAGES } from "./protocol.js";
export { jobOf } from "./source.js";

/** Options of {@link predict}. */
export interface PredictOptions {
  /** A folder `flock train --out` wrote, `job://ID` or a bare job id (needs `cluster`). */
  model: string;
  /** The records, in the model's training format (a path or `file://` URL). */
  input: string;
  /** Run on this cluster's daemons; without it the model runs in this process. */
  cluster?: ClusterHandle;
  /** Receives the output, in order, a range of lines at a time. */
  write: (text: string) => void;
  onProgress?: (p: { done: number; total: number; stats?: LedgerStats }) => void;
  log?: Logger;
  /** The model and input, already read by {@link prepare} (before connecting: parsing a large input blocks). */
  prepared?: Prepared;
  /** Distributed runs: ledger sizes and timings. */
  run?: Omit<ClusterRunOptions, "log" | "onProgress">;
}

/** What `flock predict --json` prints. */
export interface PredictResult {
  model: string;
  job: string;
  input: string;
  records: number;
  mode: "local" | "cluster";
  /** Share of records whose label the prediction matches (inputs with a label column only). */
  accuracy?: number;
  correct?: number;
  elapsedMs: number;
  recordsPerSec: number;
  /** Distributed runs: the ledger's counts (ranges, redone, lost nodes, per-node work). */
  cluster?: LedgerStats;
}

/** The model and input of a run, read and checked. */
export interface Prepared {
  bundle: ModelBundle;
  input: PredictInput;
  classes: (string | number)[];
  job: string;
}

/** Reads and checks the model and input of a run; a job's model needs `cluster`. */
export async function prepare(opts: Pick<PredictOptions, "model" | "input" | "cluster">): Promise<Prepared> {
  const job = jobOf(opts.model);
  let bundle: ModelBundle;
  if (job !== undefined) {
    if (!opts.cluster)
      throw new SavedModelError(
        opts.model,
        "no such model folder; a job's model is read from a cluster: give --nats",
      );
    bundle = await jobModel(opts.cluster.stores, job);
  } else bundle = readModelDir(opts.model);
  const info = checkInfo(`${opts.model}/flock.json`, bundle.info);
  return {
    bundle,
    input: readPredictInput(opts.input, info.preprocessing),
    classes: info.classes,
    job: info.job,
  };
}

/**
 * Predicts every record of `opts.input` and writes its line through `opts.write`, in input order.
 * Throws `BadDataError` / `SavedModelError` naming the file, line and field before any output.
 */
export async function predict(opts: PredictOptions): Promise<PredictResult> {
  const t0 = systemScheduler.now();
  const { bundle, input, classes, job } = opts.prepared ?? (await prepare(opts));
  let correct: number | undefined;
  let cluster: LedgerStats | undefined;
  if (opts.cluster) {
    const log = opts.log ?? silentLogger();
    const client = opts.cluster.client;
    client.registry.register(...PREDICTOR_MESSAGES);
    const timeoutMs = opts.run?.timeoutMs ?? 30_000;
    const port = actorPort(
      client,
      () => opts.cluster!.aliveNodes(),
      randomUUID().slice(0, 12),
      bundle,
      { askMs: timeoutMs + 5_000, startMs: 60_000, idleMs: Math.max(60_000, 4 * timeoutMs) },
      log,
    );
    try {
      const r = await runOnCluster(port, input, classes, opts.write, {
        ...opts.run,
        log,
        onProgress: opts.onProgress,
      });
      correct = r.correct;
      cluster = r.stats;
    } finally {
      await port.close();
    }
  } else correct = await predictLocally(bundle, input, opts);
  const elapsedMs = systemScheduler.now() - t0;
  return {
    model: opts.model,
    job,
    input: input.file,
    records: input.n,
    mode: opts.cluster ? "cluster" : "local",
    ...(correct === undefined ? {} : { accuracy: correct / input.n, correct }),
    elapsedMs: Math.round(elapsedMs),
    recordsPerSec: Math.round((input.n / Math.max(1, elapsedMs)) * 1000),
    ...(cluster ? { cluster } : {}),
  };
}

/** Records per local write: a multiple of the batch, so batches match the distributed ones. */
const LOCAL_CHUNK = 16 * PREDICT_BATCH;

async function predictLocally(
  bundle: ModelBundle,
  input: PredictInput,
  opts: PredictOptions,
): Promise<number | undefined> {
  const model = await openModel(bundle, opts.model);
  const k = model.info.classes.length;
  let correct = 0;
  try {
    for (let start = 0; start < input.n; start += LOCAL_CHUNK) {
      const end = Math.min(input.n, start + LOCAL_CHUNK);
      const probs = await predictRange(model, input, start, end);
      opts.write(formatLines(model.info.classes, probs, end - start));
      if (input.truth) correct += countCorrect(input.truth, start, probs, k);
      opts.onProgress?.({ done: end, total: input.n });
    }
  } finally {
    model.dispose();
  }
  return input.truth ? correct : undefined;
}
