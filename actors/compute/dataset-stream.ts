/**
 * A streamed dataset (`stream: true` on a `flock://` source): a {@link Dataset} whose samples are
 * read shard by shard from the node's cache (`dataset-store-cache.ts`) when a batch asks for
 * them, featurized with the submitter's profile (`dataset-stream-spec.ts`), and kept decoded in a
 * small LRU of at most `maxDecoded` shards per split. Memory is then bounded by the shard size
 * times that number, not by the dataset. The actor side makes sure a batch's shards are in the
 * cache before the batch is gathered (`ensureShards`); a shard that is not there is a
 * `BadDataError` for that batch only.
 * @module
 */
import { BadDataError, SampleIndexError } from "./errors.js";
import type { Batch, Dataset, DatasetTokens, Split } from "./dataset-core.js";
import { numericKey, parseRecord, type FileDataset, type Preprocessing } from "./dataset-file.js";
import { readTable, type RawRecord } from "./dataset-read.js";
import { datasetName, type FileDatasetSpec } from "./dataset-spec.js";
import { readShardRecords, requireProfile, type StoredSources } from "./dataset-store-cache.js";
import { shardOf, streamLayout, type SplitShards, type StreamLayout } from "./dataset-stream-layout.js";
import type { StreamProfile } from "./dataset-stream-spec.js";
import { resolveTokenizer, tokenRows } from "./dataset-tokens.js";
import type { WordPieceTokenizer } from "./tokenizer.js";

/** Decoded shards kept per split when the caller says no other. */
export const DEFAULT_DECODED_SHARDS = 4;

/** Options of {@link loadStreamedDataset}. */
export interface StreamOptions {
  /** Decoded shards kept per split (LRU); default {@link DEFAULT_DECODED_SHARDS}. */
  maxDecoded?: number;
}

/** What a streamed split has decoded: shards held now, the most ever held, decodes so far. */
export interface StreamStats {
  held: number;
  peak: number;
  decodes: number;
}

/** A streamed dataset, with the decoding counts of each split (for tests and reports). */
export interface StreamedDataset extends FileDataset {
  readonly layout: StreamLayout;
  readonly stats: { train: StreamStats; test: StreamStats };
}

/** Turns one shard's records into a split of model inputs and labels (with the profile's statistics). */
type Encode = (file: string, records: readonly RawRecord[]) => Split;

/** A split's chunks (shards, or one file): how many records each holds, and how to read one. */
interface Chunks {
  split: Pick<SplitShards, "firsts" | "records">;
  read(at: number): { file: string; records: RawRecord[] };
}

/**
 * One split read chunk by chunk, at most `max` chunks decoded at a time (least recently used
 * dropped first): consecutive positions of the sharded order fall in one shard, so a batch
 * usually decodes one or two.
 */
class StreamedSplit {
  private readonly decoded = new Map<number, Split>();
  readonly stats: StreamStats = { held: 0, peak: 0, decodes: 0 };

  constructor(
    private readonly chunks: Chunks,
    private readonly encode: Encode,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.chunks.split.records;
  }

  /** Copies the samples at `indices` into a fresh batch; throws {@link SampleIndexError}. */
  batch(which: "train" | "test", indices: readonly number[], inputSize: number): Batch {
    const x = new Float32Array(indices.length * inputSize);
    const y = new Int32Array(indices.length);
    indices.forEach((idx, row) => {
      if (!Number.isInteger(idx) || idx < 0 || idx >= this.size)
        throw new SampleIndexError(idx, this.size, which);
      y[row] = this.sample(idx, x, row * inputSize);
    });
    return { x, y, n: indices.length };
  }

  /** Writes sample `index` into `out` at `offset` and returns its label. */
  private sample(index: number, out: Float32Array, offset: number): number {
    const at = shardOf(this.chunks.split, index);
    const split = this.chunk(at);
    const local = index - this.chunks.split.firsts[at]!; // shardOf checked the index
    split.write(local, out, offset);
    return split.labels[local]!;
  }

  private chunk(at: number): Split {
    const hit = this.decoded.get(at);
    if (hit) {
      this.decoded.delete(at); // re-inserted: Map order is the recency order
      this.decoded.set(at, hit);
      return hit;
    }
    const { file, records } = this.chunks.read(at);
    const split = this.encode(file, records);
    while (this.decoded.size >= this.max) this.decoded.delete(this.decoded.keys().next().value!);
    this.decoded.set(at, split);
    this.stats.decodes++;
    this.stats.held = this.decoded.size;
    this.stats.peak = Math.max(this.stats.peak, this.decoded.size);
    return split;
  }
}

/**
 * Loads a streamed dataset: reads no shard, only checks that the manifests are the ones the
 * profile was computed from and lays out the splits. Throws {@link BadDataError}.
 */
export function loadStreamedDataset(
  spec: FileDatasetSpec,
  stored: StoredSources | undefined,
  opts: StreamOptions = {},
): StreamedDataset {
  const started = performance.now();
  const profile = requireProfile(spec);
  const { layout, sources } = checkedLayout(spec, profile, stored);
  const max = opts.maxDecoded ?? DEFAULT_DECODED_SHARDS;
  const tokens = spec.tokenizer === undefined ? undefined : resolveTokenizer(spec.tokenizer, noLearning);
  const encode = encoder(spec, profile, tokens);
  const train = new StreamedSplit(shardChunks(layout.train, sources), encode, max);
  const test = new StreamedSplit(testChunks(spec, layout, sources), encode, max);
  const inputSize = tokens ? tokens.maxLen : profile.features.length;
  const dataset: Dataset = {
    name: datasetName(spec),
    inputSize,
    inputShape: [inputSize],
    numClasses: profile.classes.length,
    ...(tokens ? { tokens: tokenMeta(tokens) } : {}),
    loadMs: performance.now() - started,
    trainSize: train.size,
    testSize: test.size,
    trainBatch: (indices) => train.batch("train", indices, inputSize),
    testBatch: (indices) => test.batch("test", indices, inputSize),
  };
  const preprocessing = recorded(spec, profile, sources, inputSize, tokens?.tokenizer.size ?? 0);
  return { ...dataset, preprocessing, layout, stats: { train: train.stats, test: test.stats } };
}

/** The layout of the manifests read on this node, once they are checked to be the profiled ones. */
function checkedLayout(
  spec: FileDatasetSpec,
  profile: StreamProfile,
  stored: StoredSources | undefined,
): { layout: StreamLayout; sources: StoredSources } {
  const source = stored?.[spec.source];
  if (!stored || !source)
    throw new BadDataError(spec.source, "its manifest was not read on this node before loading");
  checkDigest(spec.source, source.manifest.sha256, profile.sha256);
  if (typeof spec.test === "string" && spec.test.startsWith("flock://"))
    checkDigest(spec.test, stored[spec.test]?.manifest.sha256, profile.testSha256);
  const manifests = Object.fromEntries(Object.entries(stored).map(([u, s]) => [u, s.manifest]));
  const layout = streamLayout(spec, manifests, profile.splitSeed);
  if (layout.train.records !== profile.trainRecords)
    throw new BadDataError(spec.source, "its training split does not hold the records its profile counted");
  return { layout, sources: stored };
}

const noLearning = (): readonly string[] => {
  throw new Error("a streamed dataset's tokenizer is a file:// export (the spec refuses others)");
};

function checkDigest(url: string, actual: string | undefined, profiled: string | undefined): void {
  if (actual === undefined || actual !== profiled)
    throw new BadDataError(
      url,
      "is not the dataset the job was checked on (it was stored again since): resubmit",
    );
}

function tokenMeta(t: { tokenizer: WordPieceTokenizer; maxLen: number }): DatasetTokens {
  return { maxLen: t.maxLen, vocabulary: t.tokenizer.size, tokenizer: t.tokenizer.toJSON() };
}

/** The chunks of a split of stored shards, read from the node's cache. */
function shardChunks(split: SplitShards, stored: StoredSources): Chunks {
  return {
    split,
    read: (at) => {
      const ref = split.refs[at]!; // shardOf gives 0 <= at < refs.length
      const dir = stored[ref.url]?.dir;
      if (dir === undefined) throw new BadDataError(ref.url, "its manifest was not read on this node");
      return { file: `${ref.url} (${ref.shard.name})`, records: readShardRecords(dir, ref) };
    },
  };
}

/** The test split's chunks: its shards, or a `file://` test file as one chunk. */
function testChunks(spec: FileDatasetSpec, layout: StreamLayout, stored: StoredSources): Chunks {
  if ("refs" in layout.test) return shardChunks(layout.test, stored);
  const url = layout.test.file;
  const records = spec.profile?.testRecords ?? 0;
  return {
    split: { firsts: [0], records },
    read: () => {
      const table = readTable(url, spec.format);
      if (table.records.length !== records)
        throw new BadDataError(table.file, "is not the test file the job was checked on: resubmit");
      return { file: table.file, records: table.records };
    },
  };
}

/** The encoder of records with the profile: standardised features or token ids, and class indices. */
function encoder(
  spec: FileDatasetSpec,
  profile: StreamProfile,
  tokens: { tokenizer: WordPieceTokenizer; maxLen: number } | undefined,
): Encode {
  const fields = { label: spec.label, features: profile.features.map((f) => f.name), text: spec.text };
  const numeric = typeof profile.classes[0] === "number";
  const classIndex = new Map(profile.classes.map((c, i) => [String(c), i]));
  const width = fields.features.length;
  return (file, records) => {
    const rows = records.map((r) => parseRecord(file, r, fields));
    const labels = Int32Array.from(rows, (r) => {
      if (spec.label === undefined) return 0;
      const i = classIndex.get(numeric ? numericKey(r.labelValue) : r.label);
      if (i === undefined)
        throw new BadDataError(
          file,
          `unknown class "${r.label}": not in the training split`,
          r.at.line,
          spec.label,
        );
      return i;
    });
    if (tokens) {
      const ids = tokenRows(
        tokens.tokenizer,
        rows.map((r) => r.text),
        tokens.maxLen,
      );
      return { labels, write: ids.write };
    }
    const dense = new Float32Array(rows.length * width);
    rows.forEach((r, i) =>
      profile.features.forEach((s, j) => (dense[i * width + j] = (r.x[j]! - s.mean) / s.std)),
    );
    return { labels, write: (i, out, offset) => out.set(dense.subarray(i * width, (i + 1) * width), offset) };
  };
}

/** What `flock.json` records of a streamed dataset (as a file dataset's preprocessing). */
function recorded(
  spec: FileDatasetSpec,
  profile: StreamProfile,
  stored: StoredSources,
  inputSize: number,
  vocabulary: number,
): Preprocessing {
  const sha = (url: string): string => stored[url]?.manifest.file.sha256 ?? "";
  const test =
    typeof spec.test === "string"
      ? { source: spec.test, sha256: spec.test.startsWith("flock://") ? sha(spec.test) : "" }
      : {
          source: spec.source,
          sha256: sha(spec.source),
          fraction: spec.test?.fraction ?? 0.2,
          seed: profile.splitSeed,
        };
  return {
    format: spec.format,
    ...(spec.label === undefined ? {} : { label: spec.label }),
    classes: profile.classes,
    features: profile.features,
    ...(spec.tokenizer !== undefined && spec.text !== undefined
      ? { tokens: { field: spec.text, maxLen: inputSize, vocabulary, from: spec.tokenizer } }
      : {}),
    inputSize,
    train: { source: spec.source, sha256: sha(spec.source), records: profile.trainRecords },
    test: { ...test, records: profile.testRecords },
  };
}
