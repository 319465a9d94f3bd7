import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Metrics } from "../metrics.js";

/** A running `/metrics` endpoint. */
export interface MetricsServer extends AsyncDisposable {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves Prometheus text format on `GET /metrics` (port 0 picks a free one): the process's default
 * metrics and the node's registry, as prom-client renders them. `metrics()` is read per request, so
 * it may return a different object over time (a node's metrics after a rejoin). Binds to loopback
 * unless told otherwise: the counters describe the cluster's traffic and faults.
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
    const m = metrics();
    m.render().then(
      (text) => res.writeHead(200, { "content-type": m.contentType }).end(text),
      (error: Error) =>
        res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const close = (): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
  return { port: (server.address() as AddressInfo).port, close, [Symbol.asyncDispose]: close };
}
