/**
 * The bound of a node's shard cache (`dataset-store-cache.ts`): which shards to delete so the
 * folder fits in `maxBytes` — least recently used first, never one of `keep` (the datasets a fetch
 * just made ready) nor one used in the last `inUseMs` (a job on this node may be reading it).
 * When every shard is in use the folder may stay above the bound until they age out: a job's data
 * is never deleted under it. "Used" is a shard file's mtime, set by its write and by every good
 * read, so all processes of a node share one order and it survives restarts; it is wall-clock
 * time, so `now` is `Date.now()` (a virtual scheduler's time would not compare with mtimes).
 * @module
 */
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

/** Default bound of a node's shard cache: 2 GiB. */
export const DEFAULT_CACHE_BYTES = 2 * 1024 ** 3;
/** A shard fetched or read this recently counts as in use and is not evicted. */
export const IN_USE_MS = 10 * 60_000;

/** One cached shard: its hash (the file name), size and when it was last used (ms). */
export interface CachedShard {
  sha256: string;
  bytes: number;
  usedAt: number;
}

/** The shards to delete, oldest use first, until the rest fit in `maxBytes` (pure). */
export function evictionPlan(
  shards: readonly CachedShard[],
  maxBytes: number,
  keep: ReadonlySet<string>,
  now: number,
  inUseMs: number,
): CachedShard[] {
  let total = shards.reduce((n, s) => n + s.bytes, 0);
  const out: CachedShard[] = [];
  const byAge = [...shards].sort((a, b) => a.usedAt - b.usedAt || a.sha256.localeCompare(b.sha256));
  for (const s of byAge) {
    if (total <= maxBytes) break;
    if (keep.has(s.sha256) || now - s.usedAt < inUseMs) continue;
    out.push(s);
    total -= s.bytes;
  }
  return out;
}

const SHARD_FILE = /^([0-9a-f]{64})\.shard$/;

/** The shards in a cache folder ([] when it does not exist); other files are not the cache's. */
export function listCache(dir: string): CachedShard[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const sha256 = SHARD_FILE.exec(name)?.[1];
    if (sha256 === undefined) return [];
    try {
      const st = statSync(join(dir, name));
      return st.isFile() ? [{ sha256, bytes: st.size, usedAt: st.mtimeMs }] : [];
    } catch {
      return []; // deleted by another process meanwhile
    }
  });
}

/** What an eviction did: shards and bytes deleted, and the bytes the folder holds after. */
export interface Eviction {
  evicted: number;
  freedBytes: number;
  heldBytes: number;
}

/** Deletes the shards {@link evictionPlan} names from `dir`. */
export function evictCache(
  dir: string,
  maxBytes: number,
  keep: ReadonlySet<string>,
  now: number,
  inUseMs: number,
): Eviction {
  const shards = listCache(dir);
  const plan = evictionPlan(shards, maxBytes, keep, now, inUseMs);
  for (const s of plan) rmSync(join(dir, `${s.sha256}.shard`), { force: true });
  const freedBytes = plan.reduce((n, s) => n + s.bytes, 0);
  const heldBytes = shards.reduce((n, s) => n + s.bytes, 0) - freedBytes;
  return { evicted: plan.length, freedBytes, heldBytes };
}
