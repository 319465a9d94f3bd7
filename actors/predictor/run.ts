/**
 * The client's side of a distributed prediction run: the shell around {@link RangeLedger}. It
 * starts a predictor on each alive node, turns the ledger's commands into asks and writes, and
 * feeds answers, failures, membership and time back in. Its I/O goes through a
 * {@link PredictorPort} and its timers through the injected {@link Scheduler}, so unit tests run
 * whole runs — a node dying mid-run — on virtual time.
 * @module
 */
import { systemScheduler, type Scheduler, type Timer } from "../../runtime/clock.js";
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
  return new Promise((resolve, reject) =>
    new ClusterRun(port, input, classes, write, opts, resolve, reject).start(),
  );
}

type Send = Extract<LedgerCommand, { kind: "send" }>;
type Release = Extract<LedgerCommand, { kind: "release" }>;

/** One run: the ledger, the results held until released, and the port's promises fed back in. */
class ClusterRun {
  private readonly scheduler: Scheduler;
  private readonly log: Logger;
  private readonly ledger: RangeLedger;
  private readonly results = new Map<number, Float32Array>();
  private readonly started = new Set<string>();
  private readonly width: number;
  private readonly nodeWaitMs: number;
  private correct = 0;
  private lastReady: number;
  private ended = false;
  private timer: Timer | undefined;

  constructor(
    private readonly port: PredictorPort,
    private readonly input: PredictInput,
    private readonly classes: readonly (string | number)[],
    private readonly write: (text: string) => void,
    private readonly opts: ClusterRunOptions,
    private readonly resolve: (r: ClusterRunResult) => void,
    private readonly reject: (e: Error) => void,
  ) {
    this.scheduler = opts.scheduler ?? systemScheduler;
    this.log = opts.log ?? silentLogger();
    this.width = input.n === 0 ? 0 : input.x.length / input.n;
    this.nodeWaitMs = opts.nodeWaitMs ?? 30_000;
    this.lastReady = this.scheduler.now();
    this.ledger = new RangeLedger({
      records: input.n,
      rangeSize: alignedRangeSize(opts.rangeSize ?? 256),
      perNode: opts.perNode ?? 2,
      window: opts.window ?? 64,
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
  }

  start(): void {
    this.timer = this.scheduler.every(this.opts.pollMs ?? 200, () => this.poll());
    if (this.input.n === 0) return this.end();
    this.startNodes();
  }

  private end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.timer?.cancel();
    if (error) this.reject(error);
    else this.resolve({ stats: this.ledger.stats(), ...(this.input.truth ? { correct: this.correct } : {}) });
  }

  private exec(commands: LedgerCommand[]): void {
    for (const c of commands)
      if (c.kind === "send") this.send(c);
      else this.release(c);
    if (this.ledger.done) this.end();
  }

  private send(c: Send): void {
    const { input, width } = this;
    const req: RangeRequest = {
      range: c.range,
      attempt: c.attempt,
      start: c.start,
      n: c.end - c.start,
      x: input.x.slice(c.start * width, c.end * width),
      ...(input.text ? { text: input.text.slice(c.start, c.end) } : {}),
    };
    this.port.predict(c.node, req).then(
      (res) => this.onAnswer(c, res),
      (error: Error) => {
        if (this.ended) return;
        this.log.info(
          { node: c.node, range: c.range, err: error.message },
          "range request failed: handed out again",
        );
        this.exec(this.ledger.attemptFailed(c.range, c.attempt, this.scheduler.now()));
      },
    );
  }

  private onAnswer(c: Send, res: PredictorResult): void {
    if (this.ended) return;
    const now = this.scheduler.now();
    // The port's asks take answers only from the node asked; the fields must agree too.
    const fits =
      res.range === c.range &&
      res.attempt === c.attempt &&
      res.node === c.node &&
      res.probs.length === (c.end - c.start) * this.classes.length;
    if (!fits) {
      this.log.warn({ node: c.node, range: c.range }, "predictor answer does not match its request: ignored");
      return this.exec(this.ledger.attemptFailed(c.range, c.attempt, now));
    }
    const { accepted, commands } = this.ledger.answered(c.node, c.range, c.attempt, now);
    if (accepted) this.results.set(c.range, res.probs);
    this.exec(commands);
  }

  private release(c: Release): void {
    const probs = this.results.get(c.range)!; // accepted before it could be released
    this.results.delete(c.range);
    this.write(formatLines(this.classes, probs, c.end - c.start));
    if (this.input.truth) this.correct += countCorrect(this.input.truth, c.start, probs, this.classes.length);
    const stats = this.ledger.stats();
    this.opts.onProgress?.({ done: stats.recordsReleased, total: this.input.n, stats });
  }

  private startNodes(): void {
    for (const node of this.port.alive()) {
      if (this.started.has(node)) continue;
      this.started.add(node);
      this.port.start(node).then(
        () => {
          if (!this.ended) this.exec(this.ledger.nodeReady(node, this.scheduler.now()));
        },
        (error: Error) => {
          this.log.warn({ node, err: error.message }, "predictor could not start on this node");
          if (!this.ended) this.exec(this.ledger.nodeFailed(node, this.scheduler.now()));
        },
      );
    }
  }

  private poll(): void {
    if (this.ended) return;
    const now = this.scheduler.now();
    const alive = this.port.alive();
    // A node that left may come back (a new incarnation, no predictor): it is started again.
    for (const node of this.started) if (!alive.includes(node)) this.started.delete(node);
    this.exec(this.ledger.nodesAlive(alive, now));
    this.exec(this.ledger.tick(now));
    this.startNodes();
    if (this.ledger.readyNodes.length > 0) this.lastReady = now;
    else if (now - this.lastReady > this.nodeWaitMs)
      this.end(
        new Error(
          `no predictor ready for ${this.nodeWaitMs} ms (alive nodes: ${alive.join(", ") || "none"})`,
        ),
      );
  }
}
