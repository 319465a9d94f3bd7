import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Metrics } from "../metrics.js";

/** A running `/metrics` endpoint. */
export interface MetricsServer extends AsyncDisposable {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves Prometheus text format on `GET /metrics` (port 0 picks a free one). `metrics()` is read
 * per request, so it may return a different object over time (a node's metrics after a rejoin).
 * Binds to loopback unless told otherwise: the counters describe the cluster's traffic and faults.
 */
export async function serveMetrics(
  port: number,
  metrics: () => Metrics,
  host = "127.0.0.1",
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found; try /metrics\n");
      return;
    }
    res
      .writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
      .end(metrics().render());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const close = (): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
  return { port: (server.address() as AddressInfo).port, close, [Symbol.asyncDispose]: close };
}
