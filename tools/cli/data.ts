/**
 * `flock data put|ls|rm`: datasets in the cluster's object store, which jobs read as
 * `"source": "flock://NAME"`. A put checks the whole file (bad CSV/JSONL named by file and line)
 * or image folder (every image decoded, a bad one named by its file) before it uploads
 * anything, uploads the shards with progress on stderr, and writes the manifest last, so a
 * dataset is visible only once complete.
 * @module
 */
import { statSync } from "node:fs";
import { extname, resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import type { BlobStore } from "../../runtime/store/types.js";
import { putScanned, scanFile } from "../../actors/compute/dataset-put-stream.js";
import { checkImageFolder } from "../../actors/compute/dataset-images.js";
import { imageTable } from "../../actors/compute/dataset-images-store.js";
import {
  datasetNameProblem,
  DEFAULT_SHARD_LIMITS,
  flockUrl,
  type DataManifest,
} from "../../actors/compute/dataset-shards.js";
import {
  DATASETS_BUCKET,
  listDatasets,
  putDataset,
  removeDataset,
  type DatasetListing,
  type PutProgress,
} from "../../actors/compute/dataset-store.js";
import { BadDataError } from "../../actors/compute/errors.js";
import {
  addNatsAuthOptions,
  clusterTargetOptions,
  intIn,
  usageErrorsExit2,
  withNats,
  type NatsAuthFlags,
} from "./options.js";
import { readStores } from "./stores-read.js";
import { table } from "./table.js";

interface DataFlags extends NatsAuthFlags {
  nats?: string[];
  cluster: string;
  timeoutMs: number;
  json?: boolean;
}

type Format = DataManifest["format"];

interface PutFlags extends DataFlags {
  name: string;
  format?: Format;
  shardRecords?: number;
  shardKib?: number;
}

/** What `flock data put --json` prints as its last line. */
export interface PutResult {
  status: "stored";
  name: string;
  url: string;
  format: Format;
  records: number;
  shards: number;
  bytes: number;
  sha256: string;
  file: DataManifest["file"];
  wallSeconds: number;
}

/** Registers `flock data put`, `flock data ls` and `flock data rm`. */
export function registerDataCommands(program: Command): void {
  const data = program.command("data").description("Datasets stored in the cluster (flock://NAME sources)");
  const put = common(
    data
      .command("put")
      .description("Store a CSV or JSONL file, or a folder of images, as a dataset, in shards"),
  )
    .argument(
      "<path>",
      "The CSV (with a header row) or JSONL file, or a folder with one sub-folder of images per class",
    )
    .requiredOption(
      "--name <name>",
      "The dataset's name (letters, digits, _ -): jobs read it as flock://NAME",
      datasetName,
    )
    .option(
      "--format <format>",
      "Csv, jsonl or images (default: images for a folder, else from the file's extension)",
      formatName,
    )
    .option("--shard-records <n>", "At most this many records per shard", intIn(1, 10_000_000))
    .option("--shard-kib <kib>", "Close a shard once it holds this many KiB", intIn(1, 64 * 1024));
  put.action(async (file: string, flags: PutFlags) => {
    const result = await putFile(file, withNats(put, flags));
    const what = result.format === "images" ? "images" : `records (${result.format})`;
    const line = `flock: stored ${result.url}: ${result.records} ${what} in ${result.shards} shard(s), ${formatBytes(result.bytes)}\n`;
    if (flags.json) {
      process.stderr.write(line);
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else process.stdout.write(line);
  });

  const ls = common(data.command("ls").description("List the cluster's datasets"));
  ls.action(async (flags: DataFlags) => {
    const listing = await readStores(withNats(ls, flags), "flock-data", async (stores) =>
      listDatasets(await stores.blobs(DATASETS_BUCKET)),
    );
    process.stdout.write(flags.json ? `${JSON.stringify(listingJson(listing))}\n` : formatDatasets(listing));
  });

  const rm = common(
    data.command("rm").description("Remove a dataset (its manifest first, then its shards)"),
  ).argument("<name>", "The dataset's name", datasetName);
  rm.action(async (name: string, flags: DataFlags) => {
    const deleted = await readStores(withNats(rm, flags), "flock-data", async (stores) =>
      removeDataset(await stores.blobs(DATASETS_BUCKET), name),
    );
    process.stdout.write(
      flags.json
        ? `${JSON.stringify({ status: "removed", name, url: flockUrl(name), objects: deleted })}\n`
        : `flock: removed ${flockUrl(name)} (${deleted} objects)\n`,
    );
  });
}

function common(cmd: Command): Command {
  clusterTargetOptions(cmd)
    .option(
      "--timeout-ms <ms>",
      "Give up reaching NATS (put: the whole upload) after this long",
      intIn(100, 3_600_000),
      60_000,
    )
    .option("--json", "Print one JSON object on the last line");
  addNatsAuthOptions(cmd);
  return usageErrorsExit2(cmd);
}

function datasetName(value: string): string {
  const problem = datasetNameProblem(value);
  if (problem) throw new InvalidArgumentError(problem);
  return value;
}

function formatName(value: string): Format {
  if (value === "csv" || value === "jsonl" || value === "images") return value;
  throw new InvalidArgumentError(`"${value}" is not a format: csv, jsonl or images`);
}

/**
 * The format of what `path` names: images for a folder, else the file extension's; the flag's
 * when given. Throws {@link BadDataError} when neither says, or when the flag contradicts the path.
 */
function formatOf(path: string, flag: Format | undefined): Format {
  const folder = statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  if (folder && flag !== undefined && flag !== "images")
    throw new BadDataError(path, `is a folder: only an images dataset is a folder, not ${flag}`);
  if (!folder && flag === "images")
    throw new BadDataError(path, "is not a folder (an images dataset is a folder of class folders)");
  if (folder) return "images";
  if (flag) return flag;
  const ext = extname(path).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  throw new BadDataError(path, `cannot tell its format from the extension "${ext}": give --format csv|jsonl`);
}

/** Checks the whole file or folder, then uploads it (nothing is uploaded when it holds bad data). */
async function putFile(file: string, flags: PutFlags & { nats: string[] }): Promise<PutResult> {
  const started = performance.now();
  const path = resolve(file);
  const format = formatOf(path, flags.format);
  const limits = {
    maxRecords: flags.shardRecords ?? DEFAULT_SHARD_LIMITS.maxRecords,
    maxBytes: flags.shardKib !== undefined ? flags.shardKib * 1024 : DEFAULT_SHARD_LIMITS.maxBytes,
  };
  const onProgress = uploadReporter(flags.name);
  let upload: (blobs: BlobStore) => Promise<DataManifest>;
  if (format === "images") {
    // An image folder is decoded whole (its own bounds, `dataset-images.ts`).
    const folder = checkImageFolder(path);
    const table = imageTable(folder);
    upload = (blobs) =>
      putDataset(blobs, flags.name, format, table, { fileBytes: folder.bytes, limits, onProgress });
  } else {
    // A CSV or JSONL file streams: checked whole (pass 1) before connecting, then cut and uploaded shard by shard.
    const scan = await scanFile(path, format, { limits, onScan: scanReporter(path) });
    upload = (blobs) => putScanned(blobs, flags.name, scan, { onProgress });
  }
  const manifest = await readStores(flags, "flock-data", async (stores) =>
    upload(await stores.blobs(DATASETS_BUCKET)),
  );
  return {
    status: "stored",
    name: manifest.name,
    url: flockUrl(manifest.name),
    format: manifest.format,
    records: manifest.records,
    shards: manifest.shards.length,
    bytes: manifest.bytes,
    sha256: manifest.sha256,
    file: manifest.file,
    wallSeconds: (performance.now() - started) / 1000,
  };
}

/** Pass 1's progress on stderr, for a file big enough to take a while: as {@link uploadReporter} does. */
function scanReporter(path: string): (read: number, total: number) => void {
  const tty = process.stderr.isTTY === true;
  let last = performance.now();
  let shown = false;
  return (read, total) => {
    const done = read >= total;
    const now = performance.now();
    if (now - last < 1000 && !(done && shown)) return;
    last = now;
    shown = true;
    const pct = total > 0 ? Math.floor((100 * read) / total) : 100;
    const line = `flock: checking ${path}: ${formatBytes(read)}/${formatBytes(total)} · ${pct}%`;
    process.stderr.write(tty ? `\r\x1b[2K${line}${done ? "\n" : ""}` : `${line}\n`);
  };
}

/** Upload progress on stderr: rewritten in place on a terminal, else a line at most every second. */
function uploadReporter(name: string): (p: PutProgress) => void {
  const tty = process.stderr.isTTY === true;
  let last = Number.NEGATIVE_INFINITY;
  return (p) => {
    const done = p.shards === p.totalShards;
    const now = performance.now();
    if (!tty && !done && now - last < 1000) return;
    last = now;
    const pct = p.totalBytes > 0 ? Math.floor((100 * p.bytes) / p.totalBytes) : 100;
    const line = `flock: uploading ${flockUrl(name)}: shard ${p.shards}/${p.totalShards} · ${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)} · ${pct}%`;
    process.stderr.write(tty ? `\r\x1b[2K${line}${done ? "\n" : ""}` : `${line}\n`);
  };
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** One dataset as `flock data ls --json` lists it (the manifest without its shard list). */
function summary(m: DataManifest) {
  return {
    name: m.name,
    url: flockUrl(m.name),
    format: m.format,
    records: m.records,
    shards: m.shards.length,
    bytes: m.bytes,
    columns: m.columns,
    createdAt: m.createdAt,
    sha256: m.sha256,
    file: m.file,
  };
}

function listingJson(l: DatasetListing) {
  return { datasets: l.datasets.map(summary), ...(l.warnings.length > 0 ? { warnings: l.warnings } : {}) };
}

/** The human-readable dataset table. */
export function formatDatasets(l: DatasetListing): string {
  const lines = table(
    ["NAME", "RECORDS", "SHARDS", "BYTES", "FORMAT", "CREATED"],
    l.datasets.map((m) => [
      m.name,
      String(m.records),
      String(m.shards.length),
      formatBytes(m.bytes),
      m.format,
      m.createdAt,
    ]),
    "(no datasets: store one with `flock data put FILE_OR_DIR --name NAME`)",
  );
  for (const w of l.warnings) lines.push(`warning: ${w}`);
  return `${lines.join("\n")}\n`;
}
