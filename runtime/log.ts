import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * Structured logs as JSON lines on stderr (pino: fast, well kept, the Node default for structured
 * logging). `FLOCK_LOG_LEVEL` overrides the level; stdout stays free for command output.
 */
export function createLogger(bindings: Record<string, unknown> = {}, level?: string): Logger {
  return pino(
    { level: level ?? process.env.FLOCK_LOG_LEVEL ?? "info", base: { pid: process.pid, ...bindings } },
    pino.destination({ dest: 2, sync: true }),
  );
}

/** A logger that writes nothing, for tests and embedded use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * Logs the first occurrence of each key at once, then at most once per interval with the count of
 * what it held back, so a flood of bad input cannot flood the log.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const t = this.now();
    const seen = this.last.get(key);
    if (seen && t - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    this.log.warn({ ...fields, suppressed: seen?.suppressed ?? 0 }, message);
    this.last.set(key, { at: t, suppressed: 0 });
  }
}
