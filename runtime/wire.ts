import {
  MessageDecodeError,
  MessageTooLargeError,
  Reassembler,
  createCodec,
  describeValue,
  isChunk,
  splitFrames,
  type BadInputReason,
  type Codec,
  type Envelope,
} from "../messages/index.js";
import type { Logger } from "./log.js";
import { RateLimitedLog } from "./log.js";
import { Metrics } from "./metrics.js";
import type { Transport, Unsubscribe } from "./transport/index.js";

/** Limits the wire layer enforces on every inbound and outbound message. */
export interface WireLimits {
  /** Largest whole message, after reassembly (default 256 MiB). */
  maxMessageBytes: number;
  /** Bytes held in incomplete chunk sets, all together (default 512 MiB). */
  maxBufferedBytes: number;
  /** Deadline of an incomplete chunk set (default 10 s). */
  chunkTimeoutMs: number;
}

/** How a {@link Wire} reads its subjects. */
export interface WireOptions {
  /**
   * The publishing peer a subject names (a node's subjects carry it), whose budget a chunk set is
   * charged to; undefined: the subject itself stands for the sender.
   */
  senderOf?: (subject: string) => string | undefined;
}

/** One refused inbound message. */
export interface BadInput {
  reason: BadInputReason;
  subject: string;
  message: string;
}

const DEFAULT_LIMITS: WireLimits = {
  maxMessageBytes: 256 << 20,
  maxBufferedBytes: 512 << 20,
  chunkTimeoutMs: 10_000,
};

/**
 * Envelopes over a {@link Transport}: encode, chunk to the transport's max payload, reassemble,
 * decode and check. Every refusal is counted by reason, logged at a bounded rate and handed to the
 * `onBadInput` hook; nothing a peer sends can stop this node.
 */
export class Wire {
  readonly limits: WireLimits;
  private readonly codec: Codec = createCodec();
  private readonly rlog: RateLimitedLog;
  private readonly sweeper: NodeJS.Timeout;
  /**
   * One reassembler for every subscription: its caps (open sets, bytes, per sender) hold for the
   * node as a whole, not once per subject a peer can reach.
   */
  private readonly reassembler: Reassembler;
  private readonly senderOf: (subject: string) => string | undefined;
  private subscriptions = 0;
  private readonly badInputListeners = new Set<(bad: BadInput) => void>();

  constructor(
    readonly transport: Transport,
    readonly metrics: Metrics,
    log: Logger,
    limits: Partial<WireLimits> = {},
    opts: WireOptions = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.senderOf = opts.senderOf ?? (() => undefined);
    this.reassembler = new Reassembler({
      maxMessageBytes: this.limits.maxMessageBytes,
      maxBufferedBytes: this.limits.maxBufferedBytes,
      timeoutMs: this.limits.chunkTimeoutMs,
    });
    this.rlog = new RateLimitedLog(log);
    // Exported from the start at 0, so that a scrape and rate() see them before the first one.
    metrics.declare("flock_bad_input_total", "counter", "Inbound messages refused, by reason", ["reason"]);
    metrics.declare("flock_messages_in_total", "counter", "Messages received from the wire");
    metrics.declare("flock_messages_out_total", "counter", "Messages sent to the wire");
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.max(100, Math.min(1000, this.limits.chunkTimeoutMs / 4)),
    );
    this.sweeper.unref();
  }

  /** Encodes and publishes an envelope, in chunks when it is larger than the transport's max payload. */
  send(subject: string, env: Envelope): void {
    const bytes = this.codec.encode(env);
    if (bytes.length > this.limits.maxMessageBytes)
      throw new MessageTooLargeError(bytes.length, this.limits.maxMessageBytes);
    const frames = splitFrames(bytes, this.transport.maxPayload);
    for (const frame of frames) this.transport.publish(subject, frame);
    this.metrics.inc("flock_messages_out_total", {}, 1, "Messages sent to the wire");
    this.metrics.inc("flock_bytes_out_total", {}, bytes.length, "Bytes sent to the wire");
    if (frames.length > 1) this.metrics.inc("flock_chunks_out_total", {}, frames.length, "Chunk frames sent");
  }

  /** Listens on a subject; each envelope that decodes and passes its checks reaches `onEnvelope`. */
  listen(
    subject: string,
    onEnvelope: (env: Envelope, subject: string) => void,
    opts?: { queue?: string },
  ): Unsubscribe {
    // Sets are kept apart per subscription (two that overlap each reassemble their own copy).
    const scope = String(++this.subscriptions);
    const off = this.transport.subscribe(
      subject,
      (frame, subj) => {
        // Total: nothing thrown while decoding or delivering may reach the transport, whose reader
        // (the NATS client's parser) would stop taking in input until the connection is re-established.
        try {
          const env = this.decodeFrame(scope, frame, subj);
          if (env) onEnvelope(env, subj);
        } catch (error) {
          this.internalError(subj, error);
        }
      },
      opts,
    );
    return off;
  }

  /** One frame to an envelope: undefined while a chunk set is incomplete or when the frame is refused (reported). */
  private decodeFrame(scope: string, frame: Uint8Array, subj: string): Envelope | undefined {
    try {
      let bytes: Uint8Array | undefined = frame;
      if (isChunk(frame)) {
        bytes = this.reassembler.push(frame, subj, { sender: this.senderOf(subj) ?? subj, scope });
        if (!bytes) return undefined;
      }
      if (bytes.length > this.limits.maxMessageBytes) {
        throw new MessageDecodeError(
          "oversized",
          `message of ${bytes.length} B exceeds the ${this.limits.maxMessageBytes} B limit`,
          subj,
        );
      }
      const env = this.codec.decode(bytes, subj);
      this.metrics.inc("flock_messages_in_total", {}, 1, "Messages received from the wire");
      return env;
    } catch (error) {
      if (!(error instanceof MessageDecodeError)) throw error;
      this.reportBadInput(error.reason, subj, error.message);
      return undefined;
    }
  }

  /** A throw from decoding or delivery (a bug): counted as `internal-error` and logged, never rethrown. */
  private internalError(subject: string, error: unknown): void {
    const message = error instanceof Error ? (error.stack ?? error.message) : describeValue(error);
    try {
      this.reportBadInput("internal-error", subject, `delivery threw: ${message.slice(0, 2000)}`);
    } catch {
      // The log itself failed: the counter is all there is; the reader must go on.
    }
  }

  /** Counts, logs (rate-limited) and announces one refused inbound message. */
  reportBadInput(reason: BadInputReason, subject: string, message: string): void {
    this.metrics.inc("flock_bad_input_total", { reason }, 1, "Inbound messages refused, by reason");
    this.rlog.warn(`bad:${reason}`, { reason, subject }, message);
    const bad = { reason, subject, message };
    for (const l of this.badInputListeners) {
      try {
        l(bad);
      } catch (error) {
        setImmediate(() => process.emitWarning(`bad-input listener threw: ${(error as Error).message}`));
      }
    }
  }

  /** Listens to refused inbound messages. */
  onBadInput(listener: (bad: BadInput) => void): Unsubscribe {
    this.badInputListeners.add(listener);
    return () => this.badInputListeners.delete(listener);
  }

  /** Stops the chunk-deadline timer. */
  close(): void {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const dropped = this.reassembler.sweep();
    if (dropped > 0)
      this.reportBadInput(
        "chunk-expired",
        "*",
        `${dropped} incomplete chunk set(s) dropped after ${this.limits.chunkTimeoutMs} ms`,
      );
  }
}
