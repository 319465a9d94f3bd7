/**
 * The submitter's pass over a streamed dataset (`stream: true`): reads every shard of both splits
 * once, one decoded shard at a time, checks every record (a bad one is a `BadDataError` naming
 * the shard, line and field, before anything starts) and computes the {@link StreamProfile} the
 * trainers featurize with. The feature statistics are exactly those `loadFileDataset` computes
 * over the same training records: the sums run in the same (split) order, and the deviations in
 * a second pass over the shards, as its two loops do.
 * @module
 */
import type { BlobStore } from "../../runtime/store/types.js";
import { BadDataError } from "./errors.js";
import { DATA_LIMITS, type FileDatasetSpec } from "./dataset-spec.js";
import {
  classList,
  inputColumns,
  numericKey,
  parseRecord,
  requireColumn,
  splitSeed,
  type Parsed,
} from "./dataset-file.js";
import { readTable, type RawRecord } from "./dataset-read.js";
import { decodeShard, flockUrlName, verifyShard, type DataManifest } from "./dataset-shards.js";
import { IncompleteDatasetError } from "./dataset-store.js";
import { streamLayout, type ShardRef } from "./dataset-stream-layout.js";
import { PROFILE_CLASS_CHARS, type StreamProfile } from "./dataset-stream-spec.js";

/** Reads one shard's records (verified by hash). */
export type ReadShard = (ref: ShardRef) => Promise<RawRecord[]>;

/** A {@link ReadShard} straight from the datasets bucket, caching nothing (the submitter trains nothing). */
export function storeShardReader(blobs: BlobStore): ReadShard {
  return async ({ url, shard }) => {
    const bytes = await blobs.get(shard.name);
    if (!bytes)
      throw new IncompleteDatasetError(
        flockUrlName(url) ?? url,
        `shard ${shard.name} is missing from the store`,
      );
    const file = `${url} (${shard.name})`;
    verifyShard(file, bytes, shard.sha256);
    return decodeShard(file, bytes, shard.records);
  };
}

type Fields = { label?: string | undefined; features: string[]; text?: string | undefined };

/**
 * The profile of a streamed spec over the stored datasets' `manifests` (by URL), for the job
 * `seed`; `read` gives a shard's records. Throws {@link BadDataError} for bad data or a split
 * that cannot be made.
 */
export async function profileStream(
  spec: FileDatasetSpec,
  manifests: Readonly<Record<string, DataManifest>>,
  seed: number,
  read: ReadShard,
): Promise<StreamProfile> {
  const train = manifests[spec.source];
  if (!train) throw new BadDataError(spec.source, "its manifest was not read");
  const split = splitSeed(seed);
  const layout = streamLayout(spec, manifests, split);
  const inputs = inputColumns(spec, { file: spec.source, columns: train.columns });
  const testManifest = typeof spec.test === "string" ? manifests[spec.test] : undefined;
  if (testManifest && typeof spec.test === "string") {
    const table = { file: spec.test, columns: testManifest.columns };
    inputs.forEach((c) => requireColumn(spec, table, c));
  }
  const fields: Fields = {
    label: spec.label,
    features: inputs.filter((c) => c !== spec.text),
    text: spec.text,
  };
  const { n, means, classes } = await firstPass(spec, layout.train.refs, read, fields);
  const sq = new Float64Array(means.length);
  if (means.length > 0)
    await eachRow(layout.train.refs, read, fields, (row) =>
      row.x.forEach((v, j) => (sq[j] = sq[j]! + (v - means[j]!) ** 2)),
    );
  const features = fields.features.map((name, j) => {
    const std = Math.sqrt(sq[j]! / n);
    return { name, mean: means[j]!, std: std > 0 && Number.isFinite(std) ? std : 1 };
  });
  const testRecords = await checkTest(spec, layout.test, read, fields, classes);
  return {
    v: 1,
    sha256: train.sha256,
    ...(testManifest ? { testSha256: testManifest.sha256 } : {}),
    splitSeed: split,
    classes,
    features,
    trainRecords: n,
    testRecords,
  };
}

/**
 * The first pass over the training shards: every record checked, the count, the feature means
 * (sums in split order, as `loadFileDataset` adds them) and the class list.
 */
async function firstPass(
  spec: FileDatasetSpec,
  refs: readonly ShardRef[],
  read: ReadShard,
  fields: Fields,
): Promise<{ n: number; means: number[]; classes: (string | number)[] }> {
  const sums = new Float64Array(fields.features.length);
  const reps = new Map<string, Parsed>();
  let n = 0;
  await eachRow(refs, read, fields, (row) => {
    n++;
    row.x.forEach((v, j) => (sums[j] = sums[j]! + v));
    if (spec.label === undefined || reps.has(row.label)) return;
    if (reps.size >= DATA_LIMITS.classes)
      throw new BadDataError(spec.source, `the training split has more than ${DATA_LIMITS.classes} classes`);
    reps.set(row.label, row);
  });
  if (n === 0) throw new BadDataError(spec.source, "the training split is empty (no records)");
  const classes = spec.label === undefined ? [] : classList(spec.source, [...reps.values()]);
  const long = classes.find((c) => String(c).length > PROFILE_CLASS_CHARS);
  if (long !== undefined)
    throw new BadDataError(
      spec.source,
      `class "${String(long).slice(0, 40)}…" is longer than ${PROFILE_CLASS_CHARS} characters`,
    );
  return { n, means: Array.from(sums, (s) => s / n), classes };
}

/** Calls `each` with every parsed record of the shards, in split order, one shard decoded at a time. */
async function eachRow(
  refs: readonly ShardRef[],
  read: ReadShard,
  fields: Fields,
  each: (row: Parsed) => void,
): Promise<void> {
  for (const ref of refs) {
    const file = `${ref.url} (${ref.shard.name})`;
    for (const record of await read(ref)) each(parseRecord(file, record, fields));
  }
}

/** Checks every test record (parsed, of a training class); their number. */
async function checkTest(
  spec: FileDatasetSpec,
  test: { refs: ShardRef[] } | { file: string },
  read: ReadShard,
  fields: Fields,
  classes: readonly (string | number)[],
): Promise<number> {
  const known = new Set(classes.map(String));
  const numeric = typeof classes[0] === "number";
  let n = 0;
  const check = (row: Parsed): void => {
    n++;
    if (spec.label === undefined) return;
    const key = numeric ? numericKey(row.labelValue) : row.label;
    if (!known.has(key))
      throw new BadDataError(
        row.at.file,
        `unknown class "${row.label}": not in the training split`,
        row.at.line,
        spec.label,
      );
  };
  if ("refs" in test) await eachRow(test.refs, read, fields, check);
  else {
    const table = readTable(test.file, spec.format);
    [...fields.features, ...(fields.text === undefined ? [] : [fields.text])].forEach((c) =>
      requireColumn(spec, table, c),
    );
    for (const r of table.records) check(parseRecord(table.file, r, fields));
  }
  if (n === 0) throw new BadDataError(spec.source, "the test split is empty (no records)");
  return n;
}
