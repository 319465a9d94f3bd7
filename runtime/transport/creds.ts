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
}

const BLOCK = /-{3,}BEGIN ([^\n-]+)-{3,}\s*\n([\s\S]*?)\n\s*-{3,}END [^\n-]+-{3,}/g;
const IDENTITY = /^#\s*flock identity:\s*([A-Za-z0-9_$:-]{1,128})\s*$/m;
const INBOX = /^#\s*flock inbox:\s*(_INBOX[A-Za-z0-9_$:.-]{0,300})\s*$/m;

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
  return out;
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
