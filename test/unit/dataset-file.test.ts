import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { BadDataError } from "../../actors/compute/errors.js";
import { loadFileDataset } from "../../actors/compute/dataset-file.js";
import { FileDatasetSpec, resolveDataPaths } from "../../actors/compute/dataset-spec.js";
import { paramHash } from "../../actors/compute/hash.js";
import { parseJobSpec } from "../../actors/job/spec.js";
import { checkJobFits } from "../../actors/job/check.js";
import { flowersCsv, reviewsJsonl } from "../../examples/data/generate.js";

const dir = mkdtempSync(join(tmpdir(), "flock-data-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `text` to a temp file; returns its path and file:// URL. */
function file(name: string, text: string): { path: string; url: string } {
  const path = join(dir, name);
  writeFileSync(path, text);
  return { path, url: pathToFileURL(path).href };
}

const csv = (name: string, text: string, extra: Partial<FileDatasetSpec> = {}): FileDatasetSpec =>
  FileDatasetSpec.parse({ source: file(name, text).url, format: "csv", label: "y", ...extra });

/** Asserts that loading throws a BadDataError whose message names the file, line and field. */
function assertBad(
  spec: FileDatasetSpec,
  where: { file: string; line?: number; field?: string },
  problem: RegExp,
): void {
  assert.throws(
    () => loadFileDataset(spec, 1),
    (e: unknown) => {
      assert.ok(e instanceof BadDataError, `a BadDataError, got ${String(e)}`);
      assert.ok(e.message.startsWith(join(dir, where.file)), e.message);
      if (where.line !== undefined) assert.match(e.message, new RegExp(`line ${where.line}\\b`));
      if (where.field !== undefined) assert.match(e.message, new RegExp(`field "${where.field}"`));
      assert.match(e.message, problem);
      return true;
    },
  );
}

const TEN =
  "a,b,y\n" + Array.from({ length: 10 }, (_, i) => `${i},${i * 2},${i % 2 ? "odd" : "even"}`).join("\n");

test("bad data: each error names the file, the line and the field", () => {
  assertBad(
    csv("label.csv", "a,y\n1,x\n2,\n3,z\n"),
    { file: "label.csv", line: 3, field: "y" },
    /missing label/,
  );
  assertBad(
    csv("nan.csv", "a,y\n1,x\n2,y\nabc,z\n"),
    { file: "nan.csv", line: 4, field: "a" },
    /"abc" is not a number/,
  );
  assertBad(csv("empty.csv", "a,y\n1,x\n,y\n"), { file: "empty.csv", line: 3, field: "a" }, /missing value/);
  assertBad(csv("ragged.csv", "a,y\n1,x\n2,y,3\n"), { file: "ragged.csv", line: 3 }, /ragged row/);
  assertBad(csv("nocol.csv", "a,b\n1,2\n"), { file: "nocol.csv", line: 1, field: "y" }, /no such column/);
  assertBad(csv("dup.csv", "a,a,y\n1,2,x\n"), { file: "dup.csv", line: 1, field: "a" }, /twice/);
  assertBad(csv("none.csv", "a,y\n"), { file: "none.csv" }, /training split is empty/);
  assertBad(
    csv("tiny.csv", "a,y\n1,x\n2,y\n", { test: { fraction: 0.1 } }),
    { file: "tiny.csv" },
    /test split empty/,
  );
  const test = file("test.csv", "a,b,y\n1,2,odd\n3,4,prime\n");
  assertBad(
    csv("ten.csv", TEN, { test: test.url }),
    { file: "test.csv", line: 3, field: "y" },
    /unknown class "prime"/,
  );
  const emptyTest = file("test0.csv", "a,b,y\n");
  assertBad(csv("ten2.csv", TEN, { test: emptyTest.url }), { file: "test0.csv" }, /test split is empty/);
  assertBad(
    csv("gone.csv", TEN, { test: pathToFileURL(join(dir, "nope.csv")).href }),
    { file: "nope.csv" },
    /cannot be read/,
  );
  const jsonl = (name: string, text: string, extra = {}): FileDatasetSpec =>
    FileDatasetSpec.parse({ source: file(name, text).url, format: "jsonl", label: "y", ...extra });
  assertBad(
    jsonl("bad.jsonl", '{"a":1,"y":"p"}\n{"a":2,"y":"q"\n'),
    { file: "bad.jsonl", line: 2 },
    /not valid JSON/,
  );
  assertBad(
    jsonl("miss.jsonl", '{"a":1,"y":"p"}\n\n{"y":"q"}\n'),
    { file: "miss.jsonl", line: 3, field: "a" },
    /missing field/,
  );
  assertBad(
    jsonl("arr.jsonl", '{"a":1,"y":"p"}\n[1]\n'),
    { file: "arr.jsonl", line: 2 },
    /not a JSON object/,
  );
  assertBad(
    jsonl("flt.jsonl", '{"a":1,"y":0.5}\n'),
    { file: "flt.jsonl", line: 1, field: "y" },
    /string or an integer/,
  );
  assertBad(
    jsonl("txt.jsonl", '{"t":"ok","y":"p"}\n{"t":5,"y":"q"}\n', { text: "t" }),
    { file: "txt.jsonl", line: 2, field: "t" },
    /text must be a string/,
  );
  assertBad(csv("one.csv", "a,y\n1,x\n2,x\n3,x\n4,x\n5,x\n"), { file: "one.csv" }, /1 class/);
});

test("bad URLs and overlapping fields are refused by the job spec itself", () => {
  const base = { model: "mnist-mlp", epochs: 1, globalBatch: 8, optimizer: { name: "sgd", lr: 0.1 } };
  const refuse = (dataset: unknown, message: RegExp): void =>
    assert.throws(() => parseJobSpec({ ...base, dataset }), message);
  refuse({ source: "http://x/y.csv", format: "csv", label: "y" }, /not a file:\/\/ URL/);
  refuse({ source: "file://host/rel", format: "csv", label: "y" }, /file:\/\//);
  refuse({ source: "file:///a.csv", format: "xml", label: "y" }, /format/);
  refuse({ source: "file:///a.csv", format: "csv", label: "y", features: ["y"] }, /cannot also be an input/);
  refuse({ source: "file:///a.csv", format: "csv", label: "y", test: { fraction: 1 } }, /fraction/);
  assert.equal(parseJobSpec({ ...base, dataset: "mnist" }).dataset, "mnist");
});

test("job files name data by plain paths, relative to the job file", () => {
  const out = resolveDataPaths({ source: "data/a.csv", test: "/abs/b.csv", format: "csv" }, "/jobs") as {
    source: string;
    test: string;
  };
  assert.equal(out.source, "file:///jobs/data/a.csv");
  assert.equal(out.test, "file:///abs/b.csv");
  assert.deepEqual(resolveDataPaths({ source: "file:///x.csv", test: { fraction: 0.3 } }, "/jobs"), {
    source: "file:///x.csv",
    test: { fraction: 0.3 },
  });
});

test("tabular: string classes, standardised with training statistics, a deterministic split from the seed", () => {
  const spec = csv("flowers.csv", flowersCsv(), { label: "species", test: { fraction: 0.25 } });
  const a = loadFileDataset(spec, 7);
  const b = loadFileDataset(spec, 7);
  const c = loadFileDataset(spec, 8);
  assert.equal(a.trainSize, 450);
  assert.equal(a.testSize, 150);
  assert.equal(a.inputSize, 4);
  assert.deepEqual(a.preprocessing.classes, ["iris-alba", "iris-blue", "iris-crimson"]);
  const all = (d: typeof a, which: "train" | "test") =>
    (which === "train" ? d.trainBatch : d.testBatch)(
      Array.from({ length: which === "train" ? d.trainSize : d.testSize }, (_, i) => i),
    );
  assert.equal(
    paramHash(all(a, "train").x),
    paramHash(all(b, "train").x),
    "same seed: same split, same stats",
  );
  assert.deepEqual(a.preprocessing, b.preprocessing);
  assert.notEqual(paramHash(all(a, "test").x), paramHash(all(c, "test").x), "another seed: another split");
  // Standardised on the training split: mean 0, standard deviation 1 there (not on the test split).
  const x = all(a, "train").x;
  for (let j = 0; j < 4; j++) {
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < a.trainSize; i++) sum += x[i * 4 + j]!;
    for (let i = 0; i < a.trainSize; i++) sq += (x[i * 4 + j]! - sum / a.trainSize) ** 2;
    assert.ok(Math.abs(sum / a.trainSize) < 1e-5);
    assert.ok(Math.abs(Math.sqrt(sq / a.trainSize) - 1) < 1e-4);
  }
  assert.equal(a.preprocessing.train.sha256, a.preprocessing.test.sha256);
  assert.equal(a.preprocessing.test.fraction, 0.25);
});

test("integer labels stay integers, sorted numerically; a test label 07 is class 7", () => {
  const train = "a,y\n" + Array.from({ length: 12 }, (_, i) => `${i},${[10, 7, 2][i % 3]}`).join("\n");
  const test = file("int-test.csv", "a,y\n1,07\n2,10\n");
  const d = loadFileDataset(csv("int.csv", train, { test: test.url }), 1);
  assert.deepEqual(d.preprocessing.classes, [2, 7, 10]);
  assert.deepEqual(Array.from(d.testBatch([0, 1]).y), [1, 2]);
});

test("text: a tf-idf bag of words over the training split's vocabulary, laid out after the features", () => {
  const spec = FileDatasetSpec.parse({
    source: file("reviews.jsonl", reviewsJsonl(300, 5)).url,
    test: file("reviews-test.jsonl", reviewsJsonl(50, 6)).url,
    format: "jsonl",
    label: "sentiment",
    text: "review",
    vocabSize: 25,
  });
  const d = loadFileDataset(spec, 1);
  assert.equal(d.inputSize, 1 + 25, "the stars feature, then 25 vocabulary columns");
  assert.deepEqual(
    d.preprocessing.features.map((f) => f.name),
    ["stars"],
  );
  const text = d.preprocessing.text!;
  assert.equal(text.vocabulary.length, 25);
  assert.ok(text.vocabulary.includes("the"));
  assert.deepEqual(
    loadFileDataset(spec, 99).preprocessing.text,
    text,
    "the vocabulary depends on the data only",
  );
  const row = d.trainBatch([0]).x.subarray(1);
  const norm = Math.sqrt(row.reduce((s, v) => s + v * v, 0));
  assert.ok(Math.abs(norm - 1) < 1e-5 || norm === 0, `an L2-normalised row, got ${norm}`);
});

test("checkJobFits refuses bad data and a model that does not fit, before anything is placed", async () => {
  const spec = (dataset: unknown, inputs: number) =>
    parseJobSpec({
      model: {
        class_name: "Sequential",
        config: {
          layers: [{ class_name: "Dense", config: { units: 2, batch_input_shape: [null, inputs] } }],
        },
      },
      dataset,
      epochs: 1,
      globalBatch: 4,
      optimizer: { name: "sgd", lr: 0.1 },
    });
  const good = { source: file("fit.csv", TEN).url, format: "csv", label: "y" };
  await checkJobFits(spec(good, 2));
  await assert.rejects(checkJobFits(spec(good, 3)), /2 values per sample/);
  const bad = { source: file("unfit.csv", "a,b,y\n1,2,x\n1,q,y\n").url, format: "csv", label: "y" };
  await assert.rejects(
    checkJobFits(spec(bad, 2)),
    (e: unknown) => e instanceof BadDataError && /line 3/.test(e.message),
  );
});
