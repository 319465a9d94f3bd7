/**
 * Live progress of a training job on a terminal or a log. On a TTY one status line is rewritten
 * in place and events scroll above it; elsewhere (CI logs, pipes) plain lines are printed, the
 * progress line at most once per interval so a log does not fill with one line per step.
 */

/** What the progress renderer writes to: `process.stdout` or anything with a `write`. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  /** Terminal width; read on every render so a resize is honoured. */
  columns?: number;
}

/** One snapshot of a running job. */
export interface ProgressUpdate {
  step: number;
  epoch: number;
  epochs: number;
  loss: number;
  /** Latest eval accuracy in [0, 1], when there has been an eval. */
  accuracy?: number;
  members: number;
  samplesPerSec: number;
  status?: string;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Off a TTY, the least time between two progress lines (events are never held back). */
  plainIntervalMs?: number;
  /** Clock in ms; injected by tests. */
  now?: () => number;
}

/** A live progress display. */
export interface Progress {
  /** Shows the latest state (rewritten in place on a TTY, throttled elsewhere). */
  update(p: ProgressUpdate): void;
  /** Prints a line of its own (a membership change, a warning), above the progress line. */
  event(line: string): void;
  /** Leaves the last progress line on screen, prints `summary`; later updates are ignored. */
  done(summary?: readonly string[]): void;
}

const DEFAULT_PLAIN_INTERVAL_MS = 2000;
const DEFAULT_COLUMNS = 80;
const CLEAR_LINE = "\r\x1b[2K";

/** Control characters other than newline, which would corrupt a rewritten terminal line. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f]/g;

function formatNumber(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}

/** The progress line, e.g. `step 140 · epoch 2/3 · loss 0.5123 · acc 91.20% · 3 members · 2,540 samples/s`. */
export function formatProgress(p: ProgressUpdate): string {
  const parts = [
    `step ${p.step}`,
    `epoch ${p.epoch}/${p.epochs}`,
    `loss ${formatNumber(p.loss, 4)}`,
    ...(p.accuracy === undefined ? [] : [`acc ${formatNumber(p.accuracy * 100, 2)}%`]),
    `${p.members} member${p.members === 1 ? "" : "s"}`,
    `${Number.isFinite(p.samplesPerSec) ? Math.round(p.samplesPerSec).toLocaleString("en-US") : String(p.samplesPerSec)} samples/s`,
    ...(p.status === undefined ? [] : [p.status]),
  ];
  return parts.join(" · ").replace(CONTROL, " ");
}

/** `line` cut to fit `columns` terminal cells, with an ellipsis when cut. */
export function truncate(line: string, columns: number): string {
  // One cell stays free: writing the last cell makes some terminals wrap.
  const width = Math.max(1, columns - 1);
  const chars = Array.from(line);
  return chars.length <= width ? line : `${chars.slice(0, width - 1).join("")}…`;
}

/** Creates a progress display on `stream`: in place on a TTY, throttled plain lines otherwise. */
export function createProgress(stream: ProgressStream, opts: ProgressOptions = {}): Progress {
  const interval = opts.plainIntervalMs ?? DEFAULT_PLAIN_INTERVAL_MS;
  const now = opts.now ?? Date.now;
  const tty = stream.isTTY === true;
  let latest: string | undefined;
  let shown = false; // TTY: a progress line is on screen. Plain: `latest` has been printed.
  let lastPlainAt = Number.NEGATIVE_INFINITY;
  let finished = false;

  const columns = (): number => (stream.columns && stream.columns > 0 ? stream.columns : DEFAULT_COLUMNS);
  const redraw = (): void => {
    if (latest === undefined) return;
    stream.write(`${CLEAR_LINE}${truncate(latest, columns())}`);
    shown = true;
  };

  return {
    update(p) {
      if (finished) return;
      latest = formatProgress(p);
      if (tty) return redraw();
      shown = false;
      if (now() - lastPlainAt < interval) return;
      lastPlainAt = now();
      stream.write(`${latest}\n`);
      shown = true;
    },
    event(line) {
      const text = line.replace(/\r\n?/g, "\n").replace(CONTROL, " ");
      if (tty && shown && !finished) {
        stream.write(`${CLEAR_LINE}${text}\n`);
        redraw();
      } else {
        stream.write(`${text}\n`);
      }
    },
    done(summary = []) {
      if (finished) return;
      finished = true;
      if (tty && shown) stream.write(`${CLEAR_LINE}${truncate(latest ?? "", columns())}\n`);
      if (!tty && !shown && latest !== undefined) stream.write(`${latest}\n`);
      for (const line of summary) stream.write(`${line.replace(CONTROL, " ")}\n`);
    },
  };
}
