/**
 * The `images` dataset format: PNG / JPEG detection and decoding (actors/compute/image.ts),
 * bilinear resizing, and loading a class-per-folder dataset (actors/compute/dataset-images.ts):
 * sorted classes and files, a seeded split, the recorded preprocessing, the job spec's schema, and
 * errors that name the file or folder.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadImageDataset } from "../../actors/compute/dataset-images.js";
import { DatasetSpec } from "../../actors/compute/dataset-spec.js";
import { BadDataError } from "../../actors/compute/errors.js";
import { decodeImage, ImageDecodeError, imageKind, resizeInto } from "../../actors/compute/image.js";
import { createPrng } from "../../actors/compute/prng.js";
import { encodeImage, shapeImage, writeShapes } from "../fixtures/synthetic-images.js";

const root = mkdtempSync(join(tmpdir(), "flock-images-unit-"));
test.after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);
const url = (p: string) => pathToFileURL(p).href;

/** A solid-colour RGBA image. */
const solid = (w: number, h: number, rgb: [number, number, number]) => {
  const d = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) d.set([...rgb, 255], i * 4);
  return d;
};

test("PNG and JPEG are told by their bytes and decode to their size", () => {
  const rng = createPrng(1);
  const png = encodeImage("png", shapeImage("disc", 12, 10, rng), 12, 10);
  const jpg = encodeImage("jpeg", shapeImage("bar", 9, 7, rng), 9, 7);
  assert.equal(imageKind(png), "png");
  assert.equal(imageKind(jpg), "jpeg");
  assert.equal(imageKind(Buffer.from("label,x\n")), undefined);
  const a = decodeImage(png, 1000);
  assert.deepEqual([a.width, a.height, a.data.length], [12, 10, 480]);
  const b = decodeImage(jpg, 1000);
  assert.deepEqual([b.width, b.height, b.data.length], [9, 7, 252]);
  assert.throws(() => decodeImage(png, 100), /120 pixels, more than the limit of 100/);
  assert.throws(() => decodeImage(Buffer.from("GIF89a...."), 100), /neither a PNG nor a JPEG/);
  const broken = Buffer.concat([png.subarray(0, 40), Buffer.alloc(20, 7)]);
  assert.throws(
    () => decodeImage(broken, 1000),
    (e: unknown) => e instanceof ImageDecodeError && /as PNG/.test(e.message),
  );
  assert.throws(() => decodeImage(jpg.subarray(0, 30), 1000), /as JPEG/);
});

test("bilinear resize: same size copies bytes/255, a downscale averages, grey is luminance", () => {
  const img = {
    width: 2,
    height: 2,
    data: Uint8Array.from([0, 0, 0, 255, 255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255]),
  };
  const same = new Float32Array(12);
  resizeInto(img, 2, 2, 3, same, 0);
  assert.deepEqual(Array.from(same), [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const one = new Float32Array(4);
  resizeInto(img, 1, 1, 3, one, 1);
  assert.deepEqual(
    Array.from(one),
    [0, 0.25, 0.25, 0.25],
    "the centre of 2×2 is their mean, written at the offset",
  );
  const grey = new Float32Array(1);
  resizeInto({ width: 1, height: 1, data: Uint8Array.from([255, 255, 255, 0]) }, 1, 1, 1, grey, 0);
  assert.ok(Math.abs(grey[0]! - 1) < 1e-6, "white is 1 (alpha is dropped)");
  const up = new Float32Array(4 * 3);
  resizeInto({ width: 1, height: 1, data: Uint8Array.from([51, 102, 204, 255]) }, 2, 2, 3, up, 0);
  assert.deepEqual(
    Array.from(up),
    Array.from({ length: 4 }, () => [0.2, 0.4, 0.8])
      .flat()
      .map(Math.fround),
  );
});

test("a class-per-folder dataset loads in sorted order, split by seed, with its preprocessing", () => {
  const dir = writeShapes(fresh(), 10, 5);
  const spec = {
    source: url(dir),
    format: "images" as const,
    size: [8, 8] as [number, number],
    channels: 1 as const,
  };
  const a = loadImageDataset(spec, 3);
  assert.deepEqual(a.preprocessing.classes, ["bar", "disc"]);
  assert.deepEqual(a.inputShape, [8, 8, 1]);
  assert.equal(a.inputSize, 64);
  assert.equal(a.trainSize + a.testSize, 20);
  assert.equal(a.testSize, 4, "the default test fraction, 0.2");
  assert.deepEqual(
    [a.preprocessing.size, a.preprocessing.channels, a.preprocessing.test.seed],
    [[8, 8], 1, 3],
  );
  const all = (d: typeof a) => d.trainBatch(Array.from({ length: d.trainSize }, (_, i) => i));
  const again = loadImageDataset(spec, 3);
  assert.deepEqual(all(again), all(a), "the same folder and seed give the same samples");
  assert.deepEqual(again.preprocessing, a.preprocessing);
  const other = loadImageDataset(spec, 4);
  assert.notDeepEqual(all(other).x, all(a).x, "another seed, another split");
  const x = all(a).x;
  assert.ok(
    x.every((v) => v >= 0 && v <= 1),
    "values in [0, 1]",
  );
  // Without a size, the first image's (bar/0000.png, 24×24) is used; RGB by default.
  const d = loadImageDataset({ source: url(dir), format: "images", test: { fraction: 0.5 } }, 0);
  assert.deepEqual(d.inputShape, [24, 24, 3]);
  assert.equal(d.testSize, 10);
});

test("a test folder keeps the training classes' order; a class training lacks is refused", () => {
  const train = writeShapes(fresh(), 4, 1);
  const testDir = fresh();
  writeShapes(testDir, 2, 2);
  const d = loadImageDataset({ source: url(train), format: "images", size: [6, 6], test: url(testDir) }, 0);
  assert.deepEqual([d.trainSize, d.testSize], [8, 4]);
  assert.deepEqual(Array.from(d.testBatch([0, 1, 2, 3]).y), [0, 0, 1, 1]);
  mkdirSync(join(testDir, "boat"));
  writeFileSync(join(testDir, "boat", "a.png"), encodeImage("png", solid(4, 4, [1, 2, 3]), 4, 4));
  assert.throws(
    () => loadImageDataset({ source: url(train), format: "images", size: [6, 6], test: url(testDir) }, 0),
    (e: unknown) =>
      e instanceof BadDataError &&
      e.message.includes(join(testDir, "boat")) &&
      /unknown class "boat"/.test(e.message),
  );
});

test("bad folders and files are refused with the file or folder named", () => {
  const load = (dir: string) => () =>
    loadImageDataset({ source: url(dir), format: "images", size: [4, 4] }, 0);
  const named = (path: string, what: RegExp) => (e: unknown) =>
    e instanceof BadDataError && e.message.startsWith(path) && what.test(e.message);
  const empty = writeShapes(fresh(), 2, 1);
  mkdirSync(join(empty, "cat"));
  assert.throws(load(empty), named(join(empty, "cat"), /holds no images/));
  const text = writeShapes(fresh(), 2, 1);
  writeFileSync(join(text, "disc", "notes.txt"), "not an image\n");
  assert.throws(load(text), named(join(text, "disc", "notes.txt"), /neither a PNG nor a JPEG/));
  const corrupt = writeShapes(fresh(), 2, 1);
  writeFileSync(
    join(corrupt, "bar", "0000.png"),
    Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(40, 1)]),
  );
  assert.throws(load(corrupt), named(join(corrupt, "bar", "0000.png"), /cannot be decoded as PNG/));
  const stray = writeShapes(fresh(), 2, 1);
  writeFileSync(join(stray, "labels.csv"), "x\n");
  assert.throws(load(stray), named(join(stray, "labels.csv"), /is not a class folder/));
  const single = fresh();
  mkdirSync(join(single, "only"), { recursive: true });
  writeFileSync(join(single, "only", "a.png"), encodeImage("png", solid(4, 4, [9, 9, 9]), 4, 4));
  assert.throws(load(single), named(single, /1 class folder\(s\); at least 2/));
  assert.throws(load(join(root, "missing")), named(join(root, "missing"), /cannot be read/));
  // A hidden file (.DS_Store) is not an image of the dataset.
  const hidden = writeShapes(fresh(), 2, 1);
  writeFileSync(join(hidden, "bar", ".DS_Store"), "junk");
  assert.equal(
    loadImageDataset({ source: url(hidden), format: "images", size: [4, 4], test: { fraction: 0.5 } }, 0)
      .trainSize,
    2,
  );
});

test("the job spec takes format images with its own fields and refuses others", () => {
  const ok = DatasetSpec.safeParse({
    source: "file:///data/shapes",
    format: "images",
    size: [28, 28],
    channels: 1,
  });
  assert.ok(ok.success);
  const bad = DatasetSpec.safeParse({
    source: "file:///data/shapes",
    format: "images",
    label: "y",
    channels: 2,
  });
  assert.ok(!bad.success);
  const text = bad.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
  assert.match(text, /channels/);
  assert.match(text, /label/, "an unknown field (label) is named");
  assert.ok(!DatasetSpec.safeParse({ source: "file:///d", format: "images", size: [0, 28] }).success);
  assert.ok(!DatasetSpec.safeParse({ source: "relative/dir", format: "images" }).success);
});
