/**
 * Whether this node holds a job's `file://` data: each CSV/JSONL source must be a readable
 * regular file whose sha256 is the one the submitter computed (`spec.dataHashes`), and each image
 * folder must exist. The coordinator asks every node before giving it a trainer (see
 * `actors/coordinator/data-checks.ts`); a node answers only for itself.
 *
 * Hashing: a file is hashed at most once per version per node — {@link FileHasher} keeps the
 * digest by path and (size, mtime, inode), in a bounded LRU, so each job and each re-check of an
 * unchanged file costs one `stat`. Reads stream (64 KiB chunks), so a large file never holds the
 * event loop (heartbeats go on while it hashes).
 * @module
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { checkDataFile } from "./dataset-read.js";
import { checkImageDirs } from "./dataset-images.js";
import type { DatasetSpec } from "./dataset-spec.js";

/** Most `file://` URLs one job reads (source and test, each hashed or a folder). */
export const MAX_DATA_SOURCES = 4;
/** Longest problem text a node sends back (wire input is bounded both ways). */
export const MAX_PROBLEM_CHARS = 400;

/** One `file://` source a node must hold: a file with an expected sha256 (when known), or an image folder. */
export interface DataSource {
  url: string;
  kind: "file" | "folder";
  /** The submitter's sha256 of the file; absent: existence only. */
  sha256?: string;
}

/** The `file://` sources of a dataset spec, with the hashes `dataHashes` gives; [] for built-in or stored data. */
export function fileSources(spec: DatasetSpec, dataHashes: Record<string, string> = {}): DataSource[] {
  if (typeof spec === "string") return [];
  const urls = [spec.source, ...(typeof spec.test === "string" ? [spec.test] : [])].filter((u) =>
    u.startsWith("file://"),
  );
  const kind = spec.format === "images" ? "folder" : "file";
  return urls.map((url) => {
    const sha256 = kind === "file" ? dataHashes[url] : undefined;
    return sha256 === undefined ? { url, kind } : { url, kind, sha256 };
  });
}

interface CachedDigest {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/**
 * sha256 of files, remembered by path while (size, mtime, inode) stay the same; at most
 * `maxEntries` paths (least recently used dropped). Concurrent asks for one path share one read.
 */
export class FileHasher {
  private readonly digests = new Map<string, CachedDigest>();
  private readonly inFlight = new Map<string, Promise<string>>();
  /** Files read and hashed (not served from the cache): what the tests and the figures count. */
  reads = 0;

  constructor(private readonly maxEntries = 64) {}

  /** The sha256 (hex) of the file at `path`; rejects with the fs error when it cannot be read. */
  async sha256(path: string): Promise<string> {
    const st = await stat(path);
    const cached = this.digests.get(path);
    if (cached && cached.size === st.size && cached.mtimeMs === st.mtimeMs && cached.ino === st.ino) {
      this.digests.delete(path); // re-insert: most recently used last
      this.digests.set(path, cached);
      return cached.sha256;
    }
    const running = this.inFlight.get(path);
    if (running) return running;
    const read = this.read(path, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }).finally(() =>
      this.inFlight.delete(path),
    );
    this.inFlight.set(path, read);
    return read;
  }

  private async read(path: string, version: Omit<CachedDigest, "sha256">): Promise<string> {
    this.reads++;
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 }))
      hash.update(chunk as Buffer);
    const sha256 = hash.digest("hex");
    this.digests.delete(path);
    this.digests.set(path, { ...version, sha256 });
    while (this.digests.size > this.maxEntries) {
      const oldest = this.digests.keys().next().value;
      if (oldest === undefined) break;
      this.digests.delete(oldest);
    }
    return sha256;
  }
}

/** `text` cut to {@link MAX_PROBLEM_CHARS}. */
function bounded(text: string): string {
  return text.length <= MAX_PROBLEM_CHARS ? text : `${text.slice(0, MAX_PROBLEM_CHARS - 1)}…`;
}

/** Why this node cannot serve `source`, or undefined when it can. */
async function sourceProblem(source: DataSource, hasher: FileHasher): Promise<string | undefined> {
  try {
    if (source.kind === "folder") {
      checkImageDirs({ source: source.url, format: "images" });
      return undefined;
    }
    const path = checkDataFile(source.url);
    if (source.sha256 === undefined) return undefined;
    const actual = await hasher.sha256(path);
    // The answer names only the submitted hash: an asker learns match or not, never a digest of
    // a file it named (any file this daemon can read would otherwise be fingerprinted).
    return actual === source.sha256
      ? undefined
      : `${path}: this node's copy differs from the submitted file (sha256 ${source.sha256.slice(0, 12)}…)`;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * What keeps this node from training on `sources`: one line per source it lacks or holds
 * differently (each at most {@link MAX_PROBLEM_CHARS}); [] when it holds them all.
 */
export async function presenceProblems(
  sources: readonly DataSource[],
  hasher: FileHasher,
): Promise<string[]> {
  const problems = await Promise.all(sources.slice(0, MAX_DATA_SOURCES).map((s) => sourceProblem(s, hasher)));
  return problems.filter((p): p is string => p !== undefined).map(bounded);
}

/** The sha256 of each `file://` CSV/JSONL source of a spec, as the submitter records it in `dataHashes`. */
export async function submittedHashes(
  spec: DatasetSpec,
  hasher = new FileHasher(),
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const s of fileSources(spec))
    if (s.kind === "file") out[s.url] = await hasher.sha256(fileURLToPath(s.url));
  return out;
}
