/**
 * NATS credentials files. Two shapes are accepted: the standard `.creds` file of operator/JWT mode
 * (a user JWT block and a seed block), and a seed-only file, which is what `flock auth init`
 * writes for the nkey users of a plain server config (no JWT exists there). Both use the
 * decorated block layout, so the `nats` CLI reads a seed-only file with `--nkey FILE`.
 * @module
 */
import { credsAuthenticator, nkeyAuthenticator, type Authenticator } from "nats";

/** A credentials file that holds no usable seed. */
export class BadCredsError extends Error {
  override name = "BadCredsError";
  constructor(why: string) {
    super(`bad NATS credentials: ${why}`);
  }
}

/** What a credentials file holds. */
export interface Creds {
  /** The user JWT (operator mode only). */
  jwt?: string;
  /** The user's nkey seed (`SU...`). */
  seed: string;
  /** The flock id this user may publish as (files from `flock auth init` name it), if stated. */
  identity?: string;
  /** The inbox prefix this user may subscribe to (files from `flock auth init` name it), if stated. */
  inboxPrefix?: string;
  /** The role (`daemon`, `submitter`, `observer`) and cluster the file was issued for, if stated. */
  role?: string;
  cluster?: string;
}

const BLOCK = /-{3,}BEGIN ([^\n-]+)-{3,}\s*\n([\s\S]*?)\n\s*-{3,}END [^\n-]+-{3,}/g;
const IDENTITY = /^#\s*flock identity:\s*([A-Za-z0-9_$:-]{1,128})\s*$/m;
const INBOX = /^#\s*flock inbox:\s*(_INBOX[A-Za-z0-9_$:.-]{0,300})\s*$/m;
const ISSUED = /^#\s*flock cluster "([A-Za-z0-9_-]{1,128})", role ([a-z]{1,32})\s*$/m;

/** Parses a credentials file; throws {@link BadCredsError}, whose message never contains the secret. */
export function parseCreds(text: string): Creds {
  let jwt: string | undefined;
  let seed: string | undefined;
  for (const m of text.matchAll(BLOCK)) {
    const label = m[1] ?? "";
    const value = (m[2] ?? "").trim();
    if (/SEED/i.test(label)) seed = value;
    else if (/JWT/i.test(label)) jwt = value;
  }
  // A bare seed (one line, nothing else) is accepted too, as `nats --nkey` does.
  if (seed === undefined && /^\s*SU[A-Z2-7]{50,}\s*$/.test(text)) seed = text.trim();
  if (seed === undefined) throw new BadCredsError("no user nkey seed block found");
  if (!/^SU[A-Z2-7]{50,}$/.test(seed)) throw new BadCredsError("the seed block does not hold a user seed");
  const out: Creds = { seed };
  if (jwt !== undefined) out.jwt = jwt;
  const identity = IDENTITY.exec(text)?.[1];
  if (identity !== undefined) out.identity = identity;
  const inbox = INBOX.exec(text)?.[1];
  if (inbox !== undefined) out.inboxPrefix = inbox;
  const issued = ISSUED.exec(text);
  if (issued?.[1] !== undefined && issued[2] !== undefined) {
    out.cluster = issued[1];
    out.role = issued[2];
  }
  return out;
}

/**
 * The node id a daemon runs as with these credentials, or why it cannot: a file of `flock auth
 * init` is bound to one node id, role and cluster, and the server would refuse every publish of a
 * daemon that claims another id (its heartbeats among them: it would never join, and look alive to
 * nobody). `nodeId` is the `--node-id` given, undefined when the default applies (the file's id).
 */
export function daemonIdentity(
  creds: Creds,
  nodeId: string | undefined,
  cluster: string,
): { nodeId: string | undefined } | { error: string } {
  if (creds.role !== undefined && creds.role !== "daemon")
    return { error: `they are of role ${creds.role}, not daemon` };
  if (creds.cluster !== undefined && creds.cluster !== cluster)
    return { error: `they were issued for cluster "${creds.cluster}", not "${cluster}" (--cluster)` };
  if (creds.identity === undefined || nodeId === undefined) return { nodeId: nodeId ?? creds.identity };
  if (creds.identity !== nodeId)
    return { error: `they were issued for node "${creds.identity}", not "${nodeId}" (--node-id)` };
  return { nodeId };
}

/** The authenticator of a credentials file's contents: JWT + nonce signature, or nkey alone. */
export function credsFileAuthenticator(bytes: Uint8Array): Authenticator {
  const creds = parseCreds(new TextDecoder().decode(bytes));
  if (creds.jwt !== undefined) return credsAuthenticator(bytes);
  return nkeyAuthenticator(new TextEncoder().encode(creds.seed));
}

/** Writes a seed-only credentials file's text for one nkey user. */
export function formatSeedCreds(o: {
  seed: string;
  identity: string;
  inboxPrefix: string;
  role: string;
  cluster: string;
}): string {
  return [
    `# flock cluster "${o.cluster}", role ${o.role}`,
    `# flock identity: ${o.identity}`,
    `# flock inbox: ${o.inboxPrefix}`,
    "",
    "************************* IMPORTANT *************************",
    "NKEY Seed printed below can be used to sign and prove identity.",
    "NKEYs are sensitive and should be treated as secrets.",
    "",
    "-----BEGIN USER NKEY SEED-----",
    o.seed,
    "------END USER NKEY SEED------",
    "",
    "*************************************************************",
    "",
  ].join("\n");
}
