/**
 * Renders a nats-server configuration file (nats-server's own config syntax).
 * @module
 */

/** Route settings of one server in a cluster. */
export interface ClusterConfig {
  /** Cluster name; every server of the cluster uses the same one. */
  name: string;
  /** Port this server listens on for routes (on 127.0.0.1). */
  port: number;
  /** Route URLs of the other servers, e.g. `nats-route://127.0.0.1:6222`. */
  routes: string[];
  /**
   * Do not advertise the other servers' client URLs to clients (`no_advertise`). Set it when clients
   * must reach the cluster only through the URLs they were given, e.g. through a chaos proxy.
   */
  noAdvertise?: boolean;
}

/** Everything the config file needs, with ports already decided (-1 = let the server pick). */
export interface RenderConfigInput {
  serverName: string;
  port: number;
  /** Monitoring port; -1 picks a free one, `undefined` disables monitoring. */
  httpPort?: number;
  portsFileDir: string;
  jetstream: boolean;
  storeDir: string;
  maxPayload?: number;
  cluster?: ClusterConfig;
  debug?: boolean;
  /** Appended verbatim at the end; for settings this launcher does not model. */
  extraConfig?: string;
}

/** Returns the text of a nats-server config file that binds 127.0.0.1 only. */
export function renderConfig(input: RenderConfigInput): string {
  const q = (s: string): string => JSON.stringify(s);
  const lines = [
    `server_name: ${q(input.serverName)}`,
    `host: "127.0.0.1"`,
    `port: ${input.port}`,
    `ports_file_dir: ${q(input.portsFileDir)}`,
    `logtime: true`,
  ];
  if (input.httpPort !== undefined) lines.push(`http: ${q(`127.0.0.1:${input.httpPort}`)}`);
  if (input.maxPayload !== undefined) lines.push(`max_payload: ${Math.floor(input.maxPayload)}`);
  if (input.debug) lines.push(`debug: true`);
  if (input.jetstream) lines.push(`jetstream {`, `  store_dir: ${q(input.storeDir)}`, `}`);
  const c = input.cluster;
  if (c) {
    lines.push(`cluster {`, `  name: ${q(c.name)}`, `  listen: ${q(`127.0.0.1:${c.port}`)}`);
    if (c.noAdvertise) lines.push(`  no_advertise: true`);
    lines.push(`  routes: [${c.routes.map(q).join(", ")}]`, `}`);
  }
  if (input.extraConfig) lines.push(input.extraConfig);
  return `${lines.join("\n")}\n`;
}
