/**
 * Where the samples of a streamed dataset (`stream: true`) live, as pure data: which stored
 * shards form the training split and which the test split (a `{ fraction }` split takes WHOLE
 * shards, chosen by the profile's split seed), the record offset of each training shard, the
 * shard holding a sample (binary search), the shards a batch needs, and the epoch's sample
 * order ({@link shardedOrder}: shard-level, then in-shard shuffle). No I/O.
 * @module
 */
import { BadDataError } from "./errors.js";
import { shardedOrder, type DataManifest, type ShardEntry } from "./dataset-shards.js";
import { DEFAULT_TEST_FRACTION, type FileDatasetSpec } from "./dataset-spec.js";
import { seededPermutation } from "./prng.js";

/** One stored shard of a split: the `flock://` URL of its dataset and its manifest entry. */
export interface ShardRef {
  url: string;
  shard: ShardEntry;
}

/** The shards of one split in sample order, with the index of each shard's first sample. */
export interface SplitShards {
  refs: ShardRef[];
  /** `firsts[i]` is the split index of `refs[i]`'s first record; ascending, starting at 0. */
  firsts: number[];
  records: number;
}

/** A streamed dataset's splits: the test split is shards, or a `file://` test file read whole. */
export interface StreamLayout {
  train: SplitShards;
  test: SplitShards | { file: string };
}

/** The manifests a layout is computed from, by `flock://` URL. */
export type Manifests = Readonly<Record<string, Pick<DataManifest, "shards"> | undefined>>;

/** {@link SplitShards} of refs in the given order. */
export function splitShards(refs: ShardRef[]): SplitShards {
  const firsts: number[] = [];
  let records = 0;
  for (const r of refs) {
    firsts.push(records);
    records += r.shard.records;
  }
  return { refs, firsts, records };
}

/**
 * The layout of a streamed spec: the training split is the source's shards (all of them when
 * `test` is its own source, else all but the test shards), in manifest order. A `{ fraction }`
 * split holds out `round(fraction × shards)` whole shards, at least one each side.
 */
export function streamLayout(spec: FileDatasetSpec, manifests: Manifests, splitSeed: number): StreamLayout {
  const refsOf = (url: string): ShardRef[] => {
    const m = manifests[url];
    if (!m) throw new BadDataError(url, "its manifest was not read before loading");
    return m.shards.map((shard) => ({ url, shard }));
  };
  const all = refsOf(spec.source);
  if (typeof spec.test === "string")
    return {
      train: splitShards(all),
      test: spec.test.startsWith("flock://") ? splitShards(refsOf(spec.test)) : { file: spec.test },
    };
  const fraction = spec.test?.fraction ?? DEFAULT_TEST_FRACTION;
  const k = Math.round(fraction * all.length);
  if (k === 0 || k === all.length)
    throw new BadDataError(
      spec.source,
      `a test fraction of ${fraction} of ${all.length} shards leaves the ${k === 0 ? "test" : "training"} ` +
        "split empty: a streamed dataset is split by whole shards (store it in more shards, " +
        "`flock data put --shard-records N`, or give test its own source)",
    );
  const isTest = new Uint8Array(all.length);
  const perm = seededPermutation(all.length, splitSeed);
  for (let i = 0; i < k; i++) isTest[perm[i]!] = 1; // perm holds 0..length-1
  return {
    train: splitShards(all.filter((_, i) => isTest[i] === 0)),
    test: splitShards(all.filter((_, i) => isTest[i] === 1)),
  };
}

/** The position in `split.refs` of the shard holding split index `index` (binary search on `firsts`). */
export function shardOf(split: Pick<SplitShards, "firsts" | "records">, index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= split.records) return -1;
  let lo = 0;
  let hi = split.firsts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (split.firsts[mid]! <= index) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The shards holding the given split indices, each once, in first-use order; throws on an index outside. */
export function shardsForIndices(split: SplitShards, indices: Iterable<number>): ShardRef[] {
  const seen = new Set<number>();
  const out: ShardRef[] = [];
  for (const index of indices) {
    const at = shardOf(split, index);
    if (at < 0) throw new RangeError(`sample ${index} is outside the training split of ${split.records}`);
    if (seen.has(at)) continue;
    seen.add(at);
    out.push(split.refs[at]!); // 0 <= at < refs.length
  }
  return out;
}

/** The training shards' sizes in split order: what the epoch's {@link shardedOrder} depends on, and nothing else. */
export function trainShardSizes(layout: StreamLayout): number[] {
  return layout.train.refs.map((r) => r.shard.records);
}

/** An epoch's order over the training split of a layout (positions → split indices). */
export function streamOrder(layout: StreamLayout, seed: number): Int32Array {
  return shardedOrder(trainShardSizes(layout), seed);
}
