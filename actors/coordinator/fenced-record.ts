import { retry, type RetryOptions } from "../../runtime/retry.js";
import { KvConflictError, landedRevision, type KvStore } from "../../runtime/store/types.js";

/** Someone else wrote the record since this writer last read or wrote it: this writer is deposed. */
export class RecordFencedError extends Error {
  override name = "RecordFencedError";
}

/**
 * One KV key written only by compare-and-set on the revision this writer last read or wrote.
 *
 * A lease tells a deposed holder to stop, but cannot recall a write it already sent: without a
 * fence that write can land over its successor's. So a new holder reads the record and writes it
 * back at once (its claim); from then on the old holder's late writes expect a revision that has
 * moved on and fail with {@link RecordFencedError} instead of landing. Reads and writes run one at
 * a time in call order, so a writer's own writes never race each other.
 */
export class FencedRecord {
  /** The revision the next write expects; 0: the key was absent (the next write creates it). */
  private revision = 0;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly kv: () => Promise<KvStore>,
    readonly key: string,
  ) {}

  /** Reads the record (undefined when absent) and makes its revision the one the next write expects. */
  read(opts: RetryOptions = {}): Promise<Uint8Array | undefined> {
    return this.serial(async () => {
      const entry = await retry(async () => (await this.kv()).get(this.key), opts);
      this.revision = entry?.revision ?? 0;
      return entry?.value;
    });
  }

  /**
   * Writes `value` if nobody else wrote since this writer's last read or write; retries transient
   * failures (a NATS server restart, a stream leader election) within `opts`. Rejects with
   * {@link RecordFencedError} when deposed.
   */
  write(value: Uint8Array, opts: RetryOptions = {}): Promise<void> {
    return this.serial(async () => {
      let fenced = false;
      await retry(
        async () => {
          const kv = await this.kv();
          try {
            this.revision =
              this.revision === 0
                ? await kv.create(this.key, value)
                : await kv.update(this.key, value, this.revision);
          } catch (error) {
            if (!(error instanceof KvConflictError)) throw error;
            // An earlier attempt of this very write may have landed with its answer lost.
            const landed = await landedRevision(kv, this.key, value);
            if (landed !== undefined) {
              this.revision = landed;
              return;
            }
            fenced = true;
            throw new RecordFencedError(
              `"${this.key}" was written by another holder since revision ${this.revision}`,
            );
          }
        },
        { ...opts, abort: () => fenced || (opts.abort?.() ?? false) },
      );
    });
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work, work);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
