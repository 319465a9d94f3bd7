/**
 * The live cluster dashboard: a {@link ClusterSource} (what an observer hears and reads) feeding
 * a {@link DashboardHub} (the pure fold of `view.ts` and the followers) served by fastify.
 * @module
 */
import type { Scheduler } from "../../runtime/clock.js";
import type { Logger } from "../../runtime/log.js";
import type { StoreProvider } from "../../runtime/store/index.js";
import type { Transport } from "../../runtime/transport/index.js";
import { DashboardHub } from "./hub.js";
import { startDashboardServer } from "./server.js";
import { ClusterSource } from "./source.js";
import type { DashLimits } from "./types.js";

export { DashboardHub } from "./hub.js";
export { initialState, reduce } from "./view.js";
export { diff, applyDelta, type DashDelta } from "./delta.js";
export * from "./types.js";

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  transport: Transport;
  stores: StoreProvider;
  cluster: string;
  host: string;
  port: number;
  reportDir?: string;
  limits?: DashLimits;
  scheduler?: Scheduler;
  log: Logger;
}

/** A running dashboard. */
export interface Dashboard extends AsyncDisposable {
  readonly url: string;
  readonly hub: DashboardHub;
  /** Stops listening to the cluster and closes the server (not the transport: the caller's). */
  close(): Promise<void>;
}

/** Starts following the cluster and serving the page. */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const hub = new DashboardHub({ cluster: opts.cluster, limits: opts.limits, scheduler: opts.scheduler });
  const source = new ClusterSource({
    transport: opts.transport,
    stores: opts.stores,
    cluster: opts.cluster,
    onEvent: (e) => hub.dispatch(e),
    state: () => hub.state,
    reportDir: opts.reportDir,
    scheduler: opts.scheduler,
    log: opts.log,
  });
  source.start();
  try {
    const server = await startDashboardServer({
      hub,
      cluster: opts.cluster,
      host: opts.host,
      port: opts.port,
      reportDir: opts.reportDir,
    });
    const close = async (): Promise<void> => {
      source.stop();
      hub.close();
      await server.close();
    };
    return { url: server.url, hub, close, [Symbol.asyncDispose]: close };
  } catch (err) {
    source.stop();
    hub.close();
    throw err;
  }
}
