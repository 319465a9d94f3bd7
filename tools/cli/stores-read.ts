import { connect } from "nats";
import { redact } from "../../runtime/log.js";
import { JetStreamStores, type StoreProvider } from "../../runtime/store/index.js";
import { natsConnectionOptions } from "../../runtime/transport/index.js";
import { natsOptions, type NatsAuthFlags } from "./options.js";

/** What a one-shot read of the cluster's buckets needs: where, which cluster, how long to wait. */
export interface StoresReadFlags extends NatsAuthFlags {
  nats: string[];
  cluster: string;
  timeoutMs: number;
}

/**
 * Connects once (no actor system, no retries: `flock status` / `flock jobs`), runs `read` on the
 * cluster's stores within `timeoutMs`, and closes. Errors name the (redacted) URL or the timeout.
 */
export async function readStores<T>(
  flags: StoresReadFlags,
  name: string,
  read: (stores: StoreProvider) => Promise<T>,
): Promise<T> {
  const base = natsConnectionOptions(natsOptions(flags.nats, flags, name));
  const nc = await connect({
    ...base,
    waitOnFirstConnect: false,
    maxReconnectAttempts: 0,
    timeout: flags.timeoutMs,
  }).catch((err: Error) => {
    throw new Error(`cannot connect to NATS at ${redact(flags.nats.join(","))}: ${redact(err.message)}`, {
      cause: err,
    });
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const stores = new JetStreamStores(nc, {
      cluster: flags.cluster,
      timeoutMs: Math.min(flags.timeoutMs, 3000),
    });
    return await Promise.race([
      read(stores),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer from JetStream within ${flags.timeoutMs} ms`)),
          flags.timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await nc.close().catch(() => undefined);
  }
}
