/**
 * The client's side of a distributed prediction run: the shell around {@link RangeLedger}. It
 * starts a predictor on each alive node, turns the ledger's commands into asks and writes, and
 * feeds answers, failures, membership and time back in. Its I/O goes through a
 * {@link PredictorPort} and its timers through the injected {@link Scheduler}, so unit tests run
 * whole runs — a node dying mid-run — on virtual time.
 * @module
 */
import { systemScheduler, type Scheduler } from "../../runtime/clock.js";
import { silentLogger, type Logger } from "../../runtime/log.js";
import type { PredictInput } from "./input.js";
import { RangeLedger, type LedgerCommand, type LedgerStats } from "./ledger.js";
import { PREDICT_BATCH, countCorrect, formatLines } from "./predict.js";
import type { PredictorResult } from "./protocol.js";

/** One range request, as the port sends it. */
export interface RangeRequest {
  range: number;
  attempt: number;
  start: number;
  n: number;
  x: Float64Array;
  text?: string[];
}

/** The I/O of a run: which nodes are alive, and a predictor on each. */
export interface PredictorPort {
  alive(): string[];
  /** Starts `node`'s predictor with the run's model; rejects when it cannot. */
  start(node: string): Promise<void>;
  predict(node: string, req: RangeRequest): Promise<PredictorResult>;
  /** Stops every predictor started (best effort). */
  close(): Promise<void>;
}

/** Sizes and timings of a run. */
export interface ClusterRunOptions {
  scheduler?: Scheduler;
  /** Records per range (rounded up to a multiple of {@link PREDICT_BATCH}); default 256. */
  rangeSize?: number;
  perNode?: number;
  window?: number;
  timeoutMs?: number;
  /** How often membership and deadlines are looked at. */
  pollMs?: number;
  /** Give up when no predictor is ready for this long. */
  nodeWaitMs?: number;
  log?: Logger;
  onProgress?: (p: RunProgress) => void;
}

/** Where a run stands. */
export interface RunProgress {
  done: number;
  total: number;
  stats: LedgerStats;
}

/** What a run did. */
export interface ClusterRunResult {
  stats: LedgerStats;
  /** Correct predictions, when the input carries labels. */
  correct?: number;
}

/** The range size actually used: at least one batch, a multiple of it. */
export function alignedRangeSize(requested: number): number {
  return Math.max(1, Math.ceil(requested / PREDICT_BATCH)) * PREDICT_BATCH;
}

/**
 * Predicts `input` on the predictors `port` reaches, writing each range's lines through `write` in
 * input order. Resolves when every record is written; rejects when no predictor has been ready for
 * `nodeWaitMs`.
 */
export function runOnCluster(
  port: PredictorPort,
  input: PredictInput,
  classes: readonly (string | number)[],
  write: (text: string) => void,
  opts: ClusterRunOptions = {},
): Promise<ClusterRunResult> {
  const scheduler = opts.scheduler ?? systemScheduler;
  const log = opts.log ?? silentLogger();
  const width = input.n === 0 ? 0 : input.x.length / input.n;
  const k = classes.length;
  const ledger = new RangeLedger({
    records: input.n,
    rangeSize: alignedRangeSize(opts.rangeSize ?? 256),
    perNode: opts.perNode ?? 2,
    window: opts.window ?? 64,
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
  const results = new Map<number, Float32Array>();
  const started = new Set<string>();
  let correct = 0;
  let lastReady = scheduler.now();

  return new Promise<ClusterRunResult>((resolve, reject) => {
    let ended = false;
    const end = (error?: Error): void => {
      if (ended) return;
      ended = true;
      timer.cancel();
      if (error) reject(error);
      else resolve({ stats: ledger.stats(), ...(input.truth ? { correct } : {}) });
    };
    const exec = (commands: LedgerCommand[]): void => {
      for (const c of commands)
        if (c.kind === "send") send(c);
        else release(c);
      if (ledger.done) end();
    };
    const send = (c: Extract<LedgerCommand, { kind: "send" }>): void => {
      const n = c.end - c.start;
      const req: RangeRequest = {
        range: c.range,
        attempt: c.attempt,
        start: c.start,
        n,
        x: input.x.slice(c.start * width, c.end * width),
        ...(input.text ? { text: input.text.slice(c.start, c.end) } : {}),
      };
      port.predict(c.node, req).then(
        (res) => {
          if (ended) return;
          // The port's asks take answers only from the node asked; the fields must agree too.
          if (
            res.range !== c.range ||
            res.attempt !== c.attempt ||
            res.node !== c.node ||
            res.probs.length !== n * k
          ) {
            log.warn(
              { node: c.node, range: c.range },
              "predictor answer does not match its request: ignored",
            );
            return exec(ledger.attemptFailed(c.range, c.attempt, scheduler.now()));
          }
          const { accepted, commands } = ledger.answered(c.node, c.range, c.attempt, scheduler.now());
          if (accepted) results.set(c.range, res.probs);
          exec(commands);
        },
        (error: Error) => {
          if (ended) return;
          log.info(
            { node: c.node, range: c.range, err: error.message },
            "range request failed: handed out again",
          );
          exec(ledger.attemptFailed(c.range, c.attempt, scheduler.now()));
        },
      );
    };
    const release = (c: Extract<LedgerCommand, { kind: "release" }>): void => {
      const probs = results.get(c.range)!; // accepted before it could be released
      results.delete(c.range);
      write(formatLines(classes, probs, c.end - c.start));
      if (input.truth) correct += countCorrect(input.truth, c.start, probs, k);
      const stats = ledger.stats();
      opts.onProgress?.({ done: stats.recordsReleased, total: input.n, stats });
    };
    const startNodes = (): void => {
      for (const node of port.alive()) {
        if (started.has(node)) continue;
        started.add(node);
        port.start(node).then(
          () => {
            if (!ended) exec(ledger.nodeReady(node, scheduler.now()));
          },
          (error: Error) => {
            log.warn({ node, err: error.message }, "predictor could not start on this node");
            if (!ended) exec(ledger.nodeFailed(node, scheduler.now()));
          },
        );
      }
    };
    const poll = (): void => {
      if (ended) return;
      const now = scheduler.now();
      const alive = port.alive();
      // A node that left may come back (a new incarnation, no predictor): it is started again.
      for (const node of started) if (!alive.includes(node)) started.delete(node);
      exec(ledger.nodesAlive(alive, now));
      exec(ledger.tick(now));
      startNodes();
      if (ledger.readyNodes.length > 0) lastReady = now;
      else if (now - lastReady > (opts.nodeWaitMs ?? 30_000))
        end(
          new Error(
            `no predictor ready for ${opts.nodeWaitMs ?? 30_000} ms (alive nodes: ${port.alive().join(", ") || "none"})`,
          ),
        );
    };
    const timer = scheduler.every(opts.pollMs ?? 200, poll);
    if (input.n === 0) return end();
    startNodes();
  });
}
