/**
 * Errors raised by the nats-server launcher. Callers test with `instanceof`, never by message text.
 * @module
 */

/** The `nats-server` binary could not be found or is not executable. */
export class NatsServerNotFoundError extends Error {
  override readonly name = "NatsServerNotFoundError";
  /** Paths that were tried, in order. */
  readonly tried: readonly string[];
  constructor(tried: readonly string[], options?: ErrorOptions) {
    super(
      `nats-server binary not found (tried: ${tried.join(", ")}). ` +
        "Install it with `apt-get install -y nats-server` (Debian/Ubuntu), or download a release from " +
        "https://github.com/nats-io/nats-server/releases, or point NATS_SERVER_BIN at the binary.",
      options,
    );
    this.tried = tried;
  }
}

/** A nats-server process exited, or never became ready, while it was being started. */
export class NatsServerStartError extends Error {
  override readonly name = "NatsServerStartError";
  /** Recent log text (stderr) of the server. */
  readonly stderr: string;
  /** True when the log says a listen address was already taken, so a retry on other ports may work. */
  readonly addressInUse: boolean;
  constructor(message: string, stderr: string, options?: ErrorOptions) {
    super(`${message}\n--- nats-server stderr (tail) ---\n${tail(stderr, 4000)}`, options);
    this.stderr = stderr;
    this.addressInUse = /address already in use/i.test(stderr);
  }
}

/** A named, time-limited poll ran out of time. */
export class PollTimeoutError extends Error {
  override readonly name = "PollTimeoutError";
  /** What was being waited for. */
  readonly what: string;
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number, options?: ErrorOptions) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}`, options);
    this.what = what;
    this.timeoutMs = timeoutMs;
  }
}

/** A nats-server cluster did not form (routes, JetStream meta leader) before its deadline. */
export class NatsClusterFormError extends Error {
  override readonly name = "NatsClusterFormError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

function tail(text: string, max: number): string {
  return text.length <= max ? text : `…${text.slice(text.length - max)}`;
}
