import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * Structured logs as JSON lines on stderr (pino: fast, well kept, the Node default for structured
 * logging). `FLOCK_LOG_LEVEL` overrides the level; stdout stays free for command output.
 */
export function createLogger(
  bindings: Record<string, unknown> = {},
  level?: string,
  destination: pino.DestinationStream = pino.destination({ dest: 2, sync: true }),
): Logger {
  return pino(
    {
      level: level ?? process.env.FLOCK_LOG_LEVEL ?? "info",
      base: { pid: process.pid, ...bindings },
      // Credentials never reach the log: fields named like them are censored, and URLs with
      // `user:pass@`, tokens and nkey seeds are masked in messages and in logged errors.
      redact: { paths: SECRET_FIELDS, censor: "[redacted]" },
      serializers: { err: redactError },
      hooks: {
        logMethod(args, method) {
          for (let i = 0; i < args.length; i++) {
            const a = args[i];
            if (typeof a === "string") args[i] = redact(a);
          }
          method.apply(this, args);
        },
      },
    },
    destination,
  );
}

const SECRET_FIELDS = [
  "pass",
  "password",
  "token",
  "nkeySeed",
  "seed",
  "*.pass",
  "*.password",
  "*.token",
  "*.nkeySeed",
];

/**
 * Masks credentials in text meant for a log or an error message: the user-info of URLs
 * (`nats://user:pass@host` → `nats://***@host`, a token as user too) and nkey seeds (`S…`).
 * The one place this is done; use it wherever URLs or options are printed.
 */
export function redact(text: string): string {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, "$1***@")
    .replace(/\bS[A-Z][A-Z2-7]{54,}\b/g, "S***");
}

function redactError(err: unknown): unknown {
  // Many call sites log an error's message (a string) as `err`: keep it, without a stack.
  if (typeof err === "string") return { type: "string", message: redact(err) };
  const out = pino.stdSerializers.err(
    err instanceof Error ? err : new Error(`a non-error was thrown (${typeof err})`),
  );
  out.message = redact(out.message);
  if (out.stack) out.stack = redact(out.stack);
  return out;
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
