import { createHash, type Hash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { denseSplit, makeDataset, type Dataset } from "./dataset-core.js";
import { splitSeed, type SplitSource } from "./dataset-file.js";
import { IMAGE_LIMITS, type ImageDatasetSpec } from "./dataset-images-spec.js";
import { storedImageSource } from "./dataset-images-store.js";
import type { StoredSources } from "./dataset-store-cache.js";
import { DEFAULT_TEST_FRACTION, datasetName, fileUrlProblem } from "./dataset-spec.js";
import { BadDataError } from "./errors.js";
import { decodeImage, ImageDecodeError, resizeInto, type Rgba } from "./image.js";
import { seededPermutation } from "./prng.js";

/**
 * The `images` dataset format: a folder with one sub-folder per class, PNG and JPEG files,
 * decoded, resized to one size and scaled to [0, 1]. Deterministic: classes and files are read
 * in sorted order (by UTF-16 code units, not the locale), a `{ fraction }` split comes from the
 * job seed as for CSV / JSONL, so every node builds the same samples at the same indices. A
 * folder stored by `flock data put DIR` (`flock://NAME`, see `dataset-images-store.ts`) is read
 * through the same listing and checks, so it gives the very dataset the folder gives.
 * @module
 */

/** What `flock.json` records of an image dataset, so a predictor can prepare an image the same way. */
export interface ImagePreprocessing {
  format: "images";
  /** Class names (the training folder's sub-folders) in output order. */
  classes: string[];
  /** `[height, width]` every image is resized to (bilinear, half-pixel centres). */
  size: [number, number];
  channels: 1 | 3;
  /** Pixel values are `byte / 255`; grey is 0.299 R + 0.587 G + 0.114 B; alpha is dropped. */
  scale: "byte/255";
  inputSize: number;
  /** `records` counts images; `sha256` digests the sorted relative paths and their bytes. */
  train: SplitSource;
  test: SplitSource;
}

/** An image dataset, with the preprocessing it applied. */
export interface ImageDataset extends Dataset {
  readonly preprocessing: ImagePreprocessing;
}

/**
 * One image of a dataset, from a folder or from a stored dataset: its class, its file name in the
 * class folder, where errors name it, its size in bytes and how to read its bytes.
 */
export interface ImageEntry {
  className: string;
  name: string;
  path: string;
  size: number;
  read: () => Uint8Array;
}

/** One class of a dataset: its name, where errors name it, and its images, listed (and checked) on demand. */
export interface ClassGroup {
  name: string;
  path: string;
  images: () => ImageEntry[];
}

/**
 * A dataset's classes in sorted order, each listed only once the previous one is checked (so a
 * folder past the limits is refused before the rest is listed). `sha256`, when known (a stored
 * dataset's manifest), is what the images' digest must be.
 */
export interface ImageSource {
  root: string;
  groups: Iterable<ClassGroup>;
  sha256?: string;
}

/** An image with its label: an index into the class list. */
interface ImageFile extends ImageEntry {
  label: number;
}

/** The visible entries of a folder, sorted by code units (dotfiles such as .DS_Store are skipped). */
function entries(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => !n.startsWith("."))
      .sort(byCodeUnits);
  } catch (error) {
    throw new BadDataError(dir, `cannot be read: ${(error as Error).message}`, undefined, undefined, {
      cause: error,
    });
  }
}

/** Orders strings by UTF-16 code units (not the locale), as folders are listed. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The folder of a `file://` URL that names an existing folder; throws {@link BadDataError}. */
export function checkImageDir(url: string): string {
  const problem = fileUrlProblem(url);
  if (problem) throw new BadDataError(url, problem);
  const dir = fileURLToPath(url);
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (error) {
    throw new BadDataError(dir, `cannot be read: ${(error as Error).message}`, undefined, undefined, {
      cause: error,
    });
  }
  if (!isDir) throw new BadDataError(dir, "is not a folder (an images dataset is a folder of class folders)");
  return dir;
}

/** Checks that an image dataset's `file://` folders exist on this node (two stats; nothing is decoded). */
export function checkImageDirs(spec: ImageDatasetSpec): void {
  for (const url of [spec.source, ...(typeof spec.test === "string" ? [spec.test] : [])])
    if (!url.startsWith("flock://")) checkImageDir(url);
}

/** The class folders of a dataset folder, in sorted order; anything else in it is refused. */
function* classFolders(dir: string): Generator<ClassGroup> {
  for (const name of entries(dir)) {
    const classDir = join(dir, name);
    if (!statSync(classDir).isDirectory())
      throw new BadDataError(
        classDir,
        "is not a class folder (the dataset folder holds one folder per class)",
      );
    yield { name, path: classDir, images: () => classImages(classDir, name) };
  }
}

/** The image files of one class folder, in sorted order (an empty folder or a non-file is refused). */
function classImages(classDir: string, className: string): ImageEntry[] {
  const names = entries(classDir);
  if (names.length === 0) throw new BadDataError(classDir, `class folder "${className}" holds no images`);
  return names.map((name) => {
    const path = join(classDir, name);
    const stat = statSync(path);
    if (!stat.isFile()) throw new BadDataError(path, "is not a file (class folders hold image files only)");
    return { className, name, path, size: stat.size, read: () => readFileSync(path) };
  });
}

/** The images of a `file://` folder (throws {@link BadDataError} when it is not a folder). */
function folderSource(url: string): ImageSource {
  const root = checkImageDir(url);
  return { root, groups: classFolders(root) };
}

/**
 * The images of a dataset in sorted order, checked against the limits before any is read.
 * `classes` (the training split's) fixes the labels of a test split, whose every class must be
 * one of them.
 */
function listImages(
  source: ImageSource,
  classes?: readonly string[],
): { classes: string[]; files: ImageFile[] } {
  const { root } = source;
  const found: string[] = [];
  const files: ImageFile[] = [];
  let bytes = 0;
  for (const group of source.groups) {
    const label = classes ? classes.indexOf(group.name) : found.length;
    if (label < 0)
      throw new BadDataError(group.path, `unknown class "${group.name}": not in the training folder`);
    found.push(group.name);
    for (const image of group.images()) {
      if (image.size > IMAGE_LIMITS.fileBytes)
        throw new BadDataError(
          image.path,
          `is ${image.size} bytes, more than the limit of ${IMAGE_LIMITS.fileBytes}`,
        );
      bytes += image.size;
      files.push({ ...image, label });
    }
    if (files.length > IMAGE_LIMITS.images)
      throw new BadDataError(root, `holds more than ${IMAGE_LIMITS.images} images (the limit)`);
    if (bytes > IMAGE_LIMITS.folderBytes)
      throw new BadDataError(root, `holds more than ${IMAGE_LIMITS.folderBytes} bytes of images (the limit)`);
  }
  if (!classes && found.length < 2)
    throw new BadDataError(root, `has ${found.length} class folder(s); at least 2 are needed`);
  if (files.length === 0) throw new BadDataError(root, "holds no images");
  return { classes: classes ? [...classes] : found, files };
}

/** Reads and decodes one image; errors name the file. */
function readImage(entry: ImageEntry): { bytes: Uint8Array; image: Rgba } {
  const bytes = entry.read();
  try {
    return { bytes, image: decodeImage(bytes, IMAGE_LIMITS.pixels) };
  } catch (error) {
    if (error instanceof ImageDecodeError)
      throw new BadDataError(entry.path, error.message, undefined, undefined, { cause: error });
    throw error;
  }
}

/** Adds one image to a dataset digest: its relative path, then its bytes (sorted order gives one digest). */
function digestImage(hash: Hash, entry: Pick<ImageEntry, "className" | "name">, bytes: Uint8Array): void {
  hash.update(`${entry.className}/${entry.name}\n`).update(bytes);
}

/** One image of a checked folder, its bytes read (what `flock data put` stores). */
export interface FolderImage {
  className: string;
  name: string;
  bytes: Uint8Array;
}

/** A folder of images checked as a training folder is, every image decoded once. */
export interface CheckedImageFolder {
  root: string;
  classes: string[];
  images: FolderImage[];
  /** Bytes of all image files. */
  bytes: number;
  /** The digest a job reading this folder records (relative paths and bytes, sorted order). */
  sha256: string;
}

/**
 * Reads a training folder of images for `flock data put`: the checks a `file://` images job makes
 * (class folders only, none empty, at least two, the limits) and every image decoded, so a bad
 * image is refused, named by its file, before anything is uploaded. Throws {@link BadDataError}.
 */
export function checkImageFolder(dir: string): CheckedImageFolder {
  const source = folderSource(pathToFileURL(dir).href);
  const { classes, files } = listImages(source);
  const hash = createHash("sha256");
  let bytes = 0;
  const images = files.map((f) => {
    const read = readImage(f).bytes;
    digestImage(hash, f, read);
    bytes += read.length;
    return { className: f.className, name: f.name, bytes: read };
  });
  return { root: source.root, classes, images, bytes, sha256: hash.digest("hex") };
}

/**
 * Decoded, resized images of `files` as one dense block, and the digest of their paths and bytes
 * (which must be the source's own when it states one: a stored dataset's manifest).
 */
function decodeAll(
  source: ImageSource,
  files: readonly ImageFile[],
  size: [number, number],
  channels: 1 | 3,
): { x: Float32Array; y: Int32Array; sha256: string } {
  const inputSize = size[0] * size[1] * channels;
  if (files.length * inputSize > IMAGE_LIMITS.denseValues)
    throw new BadDataError(
      source.root,
      `${files.length} images × ${inputSize} values exceed ${IMAGE_LIMITS.denseValues}`,
    );
  const x = new Float32Array(files.length * inputSize);
  const hash = createHash("sha256");
  files.forEach((f, i) => {
    const { bytes, image } = readImage(f);
    digestImage(hash, f, bytes);
    resizeInto(image, size[0], size[1], channels, x, i * inputSize);
  });
  const sha256 = hash.digest("hex");
  if (source.sha256 !== undefined && source.sha256 !== sha256)
    throw new BadDataError(source.root, `its images digest to ${sha256}, its manifest says ${source.sha256}`);
  return { x, y: Int32Array.from(files, (f) => f.label), sha256 };
}

/** The size images are resized to: the spec's, or the first training image's. */
function sizeOf(spec: ImageDatasetSpec, first: ImageFile): [number, number] {
  if (spec.size) return spec.size;
  const { image } = readImage(first);
  if (image.height > IMAGE_LIMITS.side || image.width > IMAGE_LIMITS.side)
    throw new BadDataError(
      first.path,
      `is ${image.width}×${image.height}, larger than ${IMAGE_LIMITS.side} a side: give the dataset a "size"`,
    );
  return [image.height, image.width];
}

/** The indices of a `{ fraction }` split of `n` images for the job seed; throws when a split is empty. */
function fractionSplit(root: string, n: number, fraction: number, seed: number) {
  const k = Math.round(fraction * n);
  if (k === 0 || k === n)
    throw new BadDataError(root, `a test fraction of ${fraction} of ${n} images leaves a split empty`);
  const perm = seededPermutation(n, splitSeed(seed));
  const isTest = new Uint8Array(n);
  for (let i = 0; i < k; i++) isTest[perm[i]!] = 1; // perm holds 0..n-1
  return {
    trainIdx: [...isTest.keys()].filter((i) => isTest[i] === 0),
    testIdx: [...isTest.keys()].filter((i) => isTest[i] === 1),
  };
}

/** The samples at `idx` of a dense block, as one split. */
function pickRows(from: { x: Float32Array; y: Int32Array }, idx: readonly number[], inputSize: number) {
  const x = new Float32Array(idx.length * inputSize);
  idx.forEach((j, i) => x.set(from.x.subarray(j * inputSize, (j + 1) * inputSize), i * inputSize));
  return denseSplit(
    x,
    Int32Array.from(idx, (j) => from.y[j]!), // j < from.y.length
    inputSize,
  );
}

/**
 * Loads an {@link ImageDatasetSpec}: lists the folders (or the stored datasets of `flock://`
 * sources, from the shards `fetchStoredSources` put in `stored`), splits, decodes and resizes
 * every image.
 * Throws {@link BadDataError} naming the file or folder of the first problem (an undecodable
 * image, a file that is neither PNG nor JPEG, an empty class folder, a test class that training
 * lacks, a folder past {@link IMAGE_LIMITS}).
 */
export function loadImageDataset(spec: ImageDatasetSpec, seed: number, stored?: StoredSources): ImageDataset {
  const started = performance.now();
  const sourceOf = (url: string): ImageSource =>
    url.startsWith("flock://") ? storedImageSource(url, stored) : folderSource(url);
  const source = sourceOf(spec.source);
  const root = source.root;
  const train = listImages(source);
  const testSrc = typeof spec.test === "string" ? sourceOf(spec.test) : undefined;
  const testList = testSrc ? listImages(testSrc, train.classes) : undefined;
  const channels = spec.channels ?? 3;
  const size = sizeOf(spec, train.files[0]!); // listImages found at least one
  const inputSize = size[0] * size[1] * channels;
  const all = decodeAll(source, train.files, size, channels);
  let trainIdx: number[];
  let testIdx: number[];
  let test: { x: Float32Array; y: Int32Array; sha256: string };
  let testSource: Omit<SplitSource, "records">;
  if (testSrc && testList) {
    trainIdx = train.files.map((_, i) => i);
    test = decodeAll(testSrc, testList.files, size, channels);
    testIdx = testList.files.map((_, i) => i);
    testSource = { source: testSrc.root, sha256: test.sha256 };
  } else {
    const fraction = typeof spec.test === "object" ? spec.test.fraction : DEFAULT_TEST_FRACTION;
    ({ trainIdx, testIdx } = fractionSplit(root, train.files.length, fraction, seed));
    test = all;
    testSource = { source: root, sha256: all.sha256, fraction, seed };
  }
  const pick = (from: { x: Float32Array; y: Int32Array }, idx: number[]) => pickRows(from, idx, inputSize);
  const preprocessing: ImagePreprocessing = {
    format: "images",
    classes: train.classes,
    size,
    channels,
    scale: "byte/255",
    inputSize,
    train: { source: spec.source, sha256: all.sha256, records: trainIdx.length },
    test: { ...testSource, records: testIdx.length },
  };
  const meta = {
    name: datasetName(spec),
    inputSize,
    inputShape: [size[0], size[1], channels],
    numClasses: train.classes.length,
    loadMs: performance.now() - started,
  };
  return { ...makeDataset(meta, pick(all, trainIdx), pick(test, testIdx)), preprocessing };
}
