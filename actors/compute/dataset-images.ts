import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { denseSplit, makeDataset, type Dataset } from "./dataset-core.js";
import { splitSeed, type SplitSource } from "./dataset-file.js";
import { IMAGE_LIMITS, type ImageDatasetSpec } from "./dataset-images-spec.js";
import { DEFAULT_TEST_FRACTION, datasetName, fileUrlProblem } from "./dataset-spec.js";
import { BadDataError } from "./errors.js";
import { decodeImage, ImageDecodeError, resizeInto, type Rgba } from "./image.js";
import { seededPermutation } from "./prng.js";

/**
 * The `images` dataset format: a folder with one sub-folder per class, PNG and JPEG files,
 * decoded, resized to one size and scaled to [0, 1]. Deterministic: classes and files are read
 * in sorted order (by UTF-16 code units, not the locale), a `{ fraction }` split comes from the
 * job seed as for CSV / JSONL, so every node builds the same samples at the same indices.
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

/** One image file found in a class folder. */
interface ImageFile {
  path: string;
  /** Index into the class list. */
  label: number;
  className: string;
}

/** The visible entries of a folder, sorted by code units (dotfiles such as .DS_Store are skipped). */
function entries(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => !n.startsWith("."))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (error) {
    throw new BadDataError(dir, `cannot be read: ${(error as Error).message}`, undefined, undefined, {
      cause: error,
    });
  }
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

/** Checks that an image dataset's folders exist on this node (two stats; nothing is decoded). */
export function checkImageDirs(spec: ImageDatasetSpec): void {
  checkImageDir(spec.source);
  if (typeof spec.test === "string") checkImageDir(spec.test);
}

/**
 * The image files of a dataset folder in sorted order, checked against the limits before any is
 * read. `classes` (the training split's) fixes the labels of a test folder, whose every class
 * folder must be one of them.
 */
function listImages(dir: string, classes?: readonly string[]): { classes: string[]; files: ImageFile[] } {
  const names = entries(dir);
  const found: string[] = [];
  const files: ImageFile[] = [];
  let bytes = 0;
  for (const name of names) {
    const classDir = join(dir, name);
    if (!statSync(classDir).isDirectory())
      throw new BadDataError(
        classDir,
        "is not a class folder (the dataset folder holds one folder per class)",
      );
    const label = classes ? classes.indexOf(name) : found.length;
    if (label < 0) throw new BadDataError(classDir, `unknown class "${name}": not in the training folder`);
    found.push(name);
    const images = entries(classDir);
    if (images.length === 0) throw new BadDataError(classDir, `class folder "${name}" holds no images`);
    for (const image of images) {
      const path = join(classDir, image);
      const stat = statSync(path);
      if (!stat.isFile()) throw new BadDataError(path, "is not a file (class folders hold image files only)");
      if (stat.size > IMAGE_LIMITS.fileBytes)
        throw new BadDataError(
          path,
          `is ${stat.size} bytes, more than the limit of ${IMAGE_LIMITS.fileBytes}`,
        );
      bytes += stat.size;
      files.push({ path, label, className: name });
    }
    if (files.length > IMAGE_LIMITS.images)
      throw new BadDataError(dir, `holds more than ${IMAGE_LIMITS.images} images (the limit)`);
    if (bytes > IMAGE_LIMITS.folderBytes)
      throw new BadDataError(dir, `holds more than ${IMAGE_LIMITS.folderBytes} bytes of images (the limit)`);
  }
  if (!classes && found.length < 2)
    throw new BadDataError(dir, `has ${found.length} class folder(s); at least 2 are needed`);
  if (files.length === 0) throw new BadDataError(dir, "holds no images");
  return { classes: classes ? [...classes] : found, files };
}

/** Reads and decodes one image; errors name the file. */
function readImage(path: string): { bytes: Buffer; image: Rgba } {
  const bytes = readFileSync(path);
  try {
    return { bytes, image: decodeImage(bytes, IMAGE_LIMITS.pixels) };
  } catch (error) {
    if (error instanceof ImageDecodeError)
      throw new BadDataError(path, error.message, undefined, undefined, { cause: error });
    throw error;
  }
}

/** Decoded, resized images of `files` as one dense block, and the digest of their paths and bytes. */
function decodeAll(
  root: string,
  files: readonly ImageFile[],
  size: [number, number],
  channels: 1 | 3,
): { x: Float32Array; y: Int32Array; sha256: string } {
  const inputSize = size[0] * size[1] * channels;
  if (files.length * inputSize > IMAGE_LIMITS.denseValues)
    throw new BadDataError(
      root,
      `${files.length} images × ${inputSize} values exceed ${IMAGE_LIMITS.denseValues}`,
    );
  const x = new Float32Array(files.length * inputSize);
  const hash = createHash("sha256");
  files.forEach((f, i) => {
    const { bytes, image } = readImage(f.path);
    hash.update(`${f.className}/${basename(f.path)}\n`).update(bytes);
    resizeInto(image, size[0], size[1], channels, x, i * inputSize);
  });
  return { x, y: Int32Array.from(files, (f) => f.label), sha256: hash.digest("hex") };
}

/** The size images are resized to: the spec's, or the first training image's. */
function sizeOf(spec: ImageDatasetSpec, first: ImageFile): [number, number] {
  if (spec.size) return spec.size;
  const { image } = readImage(first.path);
  if (image.height > IMAGE_LIMITS.side || image.width > IMAGE_LIMITS.side)
    throw new BadDataError(
      first.path,
      `is ${image.width}×${image.height}, larger than ${IMAGE_LIMITS.side} a side: give the dataset a "size"`,
    );
  return [image.height, image.width];
}

/**
 * Loads an {@link ImageDatasetSpec}: lists the folders, splits, decodes and resizes every image.
 * Throws {@link BadDataError} naming the file or folder of the first problem (an undecodable
 * image, a file that is neither PNG nor JPEG, an empty class folder, a test class that training
 * lacks, a folder past {@link IMAGE_LIMITS}).
 */
export function loadImageDataset(spec: ImageDatasetSpec, seed: number): ImageDataset {
  const started = performance.now();
  const root = checkImageDir(spec.source);
  const train = listImages(root);
  const testRoot = typeof spec.test === "string" ? checkImageDir(spec.test) : undefined;
  const testList = testRoot ? listImages(testRoot, train.classes) : undefined;
  const channels = spec.channels ?? 3;
  const size = sizeOf(spec, train.files[0]!); // listImages found at least one
  const inputSize = size[0] * size[1] * channels;
  const all = decodeAll(root, train.files, size, channels);
  let trainIdx: number[];
  let testIdx: number[];
  let test: { x: Float32Array; y: Int32Array; sha256: string };
  let testSource: Omit<SplitSource, "records">;
  if (testRoot && testList) {
    trainIdx = train.files.map((_, i) => i);
    test = decodeAll(testRoot, testList.files, size, channels);
    testIdx = testList.files.map((_, i) => i);
    testSource = { source: testRoot, sha256: test.sha256 };
  } else {
    const fraction = typeof spec.test === "object" ? spec.test.fraction : DEFAULT_TEST_FRACTION;
    const n = train.files.length;
    const k = Math.round(fraction * n);
    if (k === 0 || k === n)
      throw new BadDataError(root, `a test fraction of ${fraction} of ${n} images leaves a split empty`);
    const perm = seededPermutation(n, splitSeed(seed));
    const isTest = new Uint8Array(n);
    for (let i = 0; i < k; i++) isTest[perm[i]!] = 1; // perm holds 0..n-1
    trainIdx = [...isTest.keys()].filter((i) => isTest[i] === 0);
    testIdx = [...isTest.keys()].filter((i) => isTest[i] === 1);
    test = all;
    testSource = { source: root, sha256: all.sha256, fraction, seed };
  }
  const pick = (from: { x: Float32Array; y: Int32Array }, idx: number[]) => {
    const x = new Float32Array(idx.length * inputSize);
    idx.forEach((j, i) => x.set(from.x.subarray(j * inputSize, (j + 1) * inputSize), i * inputSize));
    return denseSplit(
      x,
      Int32Array.from(idx, (j) => from.y[j]!),
      inputSize,
    ); // j < from.y.length
  };
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
