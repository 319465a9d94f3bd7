import { createHash } from "node:crypto";

/**
 * A short fingerprint of a parameter vector: sha256 over its raw bytes (platform byte order,
 * little-endian on every machine flock targets), hex, first 16 characters. Two replicas agree
 * exactly when their hashes agree.
 */
export function paramHash(params: Float32Array): string {
  const bytes = new Uint8Array(params.buffer, params.byteOffset, params.byteLength);
  return createHash("sha256").update(bytes).digest("hex").slice(0, 16);
}
