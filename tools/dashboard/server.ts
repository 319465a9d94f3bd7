/**
 * The dashboard's HTTP server (fastify): the page, its script, the chart libraries from
 * `node_modules` (no internet needed), `/api/state` (one JSON snapshot), `/events` (the live stream:
 * a `snapshot` event, then `delta` events; see `delta.ts`) and finished jobs' HTML reports. Read-only:
 * only GET routes exist, and nothing a request carries reaches the cluster.
 * @module
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Fastify, { type FastifyInstance } from "fastify";
import { REPORT_HTML_FILE } from "../report/report.js";
import { clientScript } from "./client.js";
import type { DashboardHub } from "./hub.js";
import { renderPage } from "./page.js";

/** Options of {@link startDashboardServer}. */
export interface DashboardServerOptions {
  hub: DashboardHub;
  cluster: string;
  host: string;
  /** 0: any free port. */
  port: number;
  /** Where job reports are (`<dir>/<job>/report.html`); undefined: no report route. */
  reportDir?: string;
  /** Comment lines sent on an idle stream, so proxies keep it open (default 15 s). */
  keepAliveMs?: number;
}

/** A running dashboard server. */
export interface DashboardServer extends AsyncDisposable {
  /** `http://host:port`. */
  readonly url: string;
  close(): Promise<void>;
}

// vega's expression parser compiles with `new Function`: hence 'unsafe-eval' for scripts, and the
// page's own styles are inline. Nothing else, and nothing from another origin.
const PAGE_CSP =
  "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'";
// A report is self-contained HTML with inline CSS and SVG, and runs no script.
const REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/** Where a package's browser build lies: next to the file its `exports` name. */
function vendorFile(pkg: string, file: string): string {
  return join(dirname(createRequire(import.meta.url).resolve(pkg)), file);
}

async function assets(): Promise<Map<string, { type: string; body: string }>> {
  const js = "text/javascript; charset=utf-8";
  const [vega, vegaLite, delta] = await Promise.all([
    readFile(vendorFile("vega", "vega.min.js"), "utf8"),
    readFile(vendorFile("vega-lite", "vega-lite.min.js"), "utf8"),
    readFile(fileURLToPath(new URL("./delta.js", import.meta.url)), "utf8"),
  ]);
  return new Map([
    ["/vendor/vega.min.js", { type: js, body: vega }],
    ["/vendor/vega-lite.min.js", { type: js, body: vegaLite }],
    ["/lib/delta.js", { type: js, body: delta }],
    ["/app.js", { type: js, body: clientScript() }],
  ]);
}

/** Starts the server; resolves once it listens. */
export async function startDashboardServer(opts: DashboardServerOptions): Promise<DashboardServer> {
  // Open event streams would hold `close()` forever: it ends every connection.
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const page = renderPage(opts.cluster);
  for (const [path, asset] of await assets())
    app.get(path, (_req, reply) =>
      reply.type(asset.type).header("cache-control", "no-cache").send(asset.body),
    );
  app.get("/", (_req, reply) =>
    reply.type("text/html; charset=utf-8").header("content-security-policy", PAGE_CSP).send(page),
  );
  // Browsers ask for it on every page: no icon, and no 404 in the page's console.
  app.get("/favicon.ico", (_req, reply) => reply.code(204).send());
  app.get("/api/state", (_req, reply) => reply.header("cache-control", "no-store").send(opts.hub.state));
  streamRoute(app, opts);
  if (opts.reportDir !== undefined) reportRoute(app, opts.reportDir);
  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  const close = async (): Promise<void> => {
    await app.close();
  };
  return { url: `http://${host}:${port}`, close, [Symbol.asyncDispose]: close };
}

/** `/events`: server-sent events, one stream per page, until the page goes or the server closes. */
function streamRoute(app: FastifyInstance, opts: DashboardServerOptions): void {
  app.get("/events", (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    const send = (event: string, data: unknown): void => {
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const off = opts.hub.follow({ snapshot: (s) => send("snapshot", s), delta: (d) => send("delta", d) });
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), opts.keepAliveMs ?? 15_000);
    const end = (): void => {
      clearInterval(keepAlive);
      off();
    };
    req.raw.once("close", end);
    res.once("close", end);
  });
}

/** `/reports/<job>/report.html`: the HTML report `flock train` wrote for a finished job, if any. */
function reportRoute(app: FastifyInstance, dir: string): void {
  app.get<{ Params: { job: string } }>(`/reports/:job/${REPORT_HTML_FILE}`, async (req, reply) => {
    const job = req.params.job;
    // One path segment of safe characters: nothing can climb out of the report folder.
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(job)) return reply.code(404).send("no such report");
    const html = await readFile(join(dir, job, REPORT_HTML_FILE), "utf8").catch(() => undefined);
    if (html === undefined) return reply.code(404).send("no such report");
    return reply.type("text/html; charset=utf-8").header("content-security-policy", REPORT_CSP).send(html);
  });
}
