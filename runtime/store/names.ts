/**
 * Names that both store implementations accept: bucket names that JetStream can turn into stream
 * names, and keys that are valid JetStream KV keys. The memory store enforces the same rules so a
 * name that works on the embedded default also works on NATS.
 */

/** A bucket name or key the stores refuse. */
export class InvalidStoreNameError extends Error {
  override name = "InvalidStoreNameError";
  constructor(
    readonly kind: "bucket" | "key",
    readonly value: string,
    rule: string,
  ) {
    super(`invalid ${kind} "${value.slice(0, 200)}": ${rule}`);
  }
}

const BUCKET = /^[A-Za-z0-9_-]{1,64}$/;
const KEY = /^[-/=.\w]+$/;

/** Throws {@link InvalidStoreNameError} unless `name` is 1–64 of letters, digits, `_` and `-`. */
export function checkBucketName(name: string): void {
  if (!BUCKET.test(name)) throw new InvalidStoreNameError("bucket", name, "use 1-64 letters, digits, _ or -");
}

/** Throws {@link InvalidStoreNameError} unless `key` is a valid JetStream KV key. */
export function checkKey(key: string): void {
  if (
    key.length === 0 ||
    key.length > 1024 ||
    !KEY.test(key) ||
    key.startsWith(".") ||
    key.endsWith(".") ||
    key.includes("..")
  ) {
    throw new InvalidStoreNameError(
      "key",
      key,
      "use letters, digits and - / _ = . (no leading, trailing or double dot)",
    );
  }
}

/**
 * Encodes any string as one key token (no dots): letters, digits, `_` and `-` stay, every other
 * UTF-8 byte becomes `=HH`. Node ids such as `gpu:0` or `a.b` become valid keys this way.
 */
export function encodeKeyToken(s: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(s)) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `=${byte.toString(16).padStart(2, "0").toUpperCase()}`;
  }
  return out;
}

/** Inverse of {@link encodeKeyToken}. */
export function decodeKeyToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === "=") {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Whether `key` is under `prefix` (plain string prefix: `a.b.` matches `a.b.c`). */
export function keyHasPrefix(key: string, prefix: string | undefined): boolean {
  return prefix === undefined || prefix === "" || key.startsWith(prefix);
}
