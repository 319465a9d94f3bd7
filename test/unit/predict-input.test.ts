/**
 * The records `flock predict` reads become exactly the inputs training built (the same float32
 * bits, for tabular CSV and for JSONL text), labels are read for scoring only, and bad input is
 * refused naming the file, line and field before anything is predicted.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { test } from "node:test";
import { loadFileDataset } from "../../actors/compute/dataset-file.js";
import { BadDataError } from "../../actors/compute/errors.js";
import { readPredictInput, recordsToInputs } from "../../actors/predictor/input.js";
import { flowersCsv } from "../../examples/data/generate.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "flock-predict-input-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function csvFixture(): { train: string; test: string } {
  const lines = flowersCsv(300).trimEnd().split("\n");
  const train = join(dir, "train.csv");
  const testFile = join(dir, "test.csv");
  writeFileSync(train, lines.slice(0, 241).join("\n") + "\n");
  writeFileSync(testFile, [lines[0], ...lines.slice(241)].join("\n") + "\n");
  return { train, test: testFile };
}

test("CSV records become the inputs training built for them, bit for bit; labels score", () => {
  const f = csvFixture();
  const data = loadFileDataset(
    {
      source: pathToFileURL(f.train).href,
      test: pathToFileURL(f.test).href,
      format: "csv",
      label: "species",
    },
    1,
  );
  const input = readPredictInput(f.test, data.preprocessing);
  assert.equal(input.n, data.testSize);
  const batch = data.testBatch(Array.from({ length: data.testSize }, (_, i) => i));
  assert.deepEqual(recordsToInputs(data.preprocessing, input, 0, input.n), batch.x);
  assert.deepEqual(Array.from(input.truth!), Array.from(batch.y));
  // A sub-range is the same rows.
  assert.deepEqual(
    recordsToInputs(data.preprocessing, input, 5, 9),
    batch.x.subarray(5 * data.inputSize, 9 * data.inputSize),
  );
});

test("JSONL text records become training's tf-idf inputs, bit for bit", () => {
  const data = loadFileDataset(
    {
      source: pathToFileURL(join(root, "examples/data/reviews-train.jsonl")).href,
      test: pathToFileURL(join(root, "examples/data/reviews-test.jsonl")).href,
      format: "jsonl",
      label: "sentiment",
      text: "review",
      features: [],
      vocabSize: 64,
    },
    1,
  );
  const input = readPredictInput(join(root, "examples/data/reviews-test.jsonl"), data.preprocessing);
  const batch = data.testBatch(Array.from({ length: data.testSize }, (_, i) => i));
  assert.deepEqual(recordsToInputs(data.preprocessing, input, 0, input.n), batch.x);
});

test("an input without a label column predicts, unscored; bad input names file, line and field", () => {
  const f = csvFixture();
  const data = loadFileDataset({ source: pathToFileURL(f.train).href, format: "csv", label: "species" }, 1);
  const p = data.preprocessing;
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const header = "sepal_length,sepal_width,petal_length,petal_width";
  const unlabelled = readPredictInput(write("nolabel.csv", `${header}\n1,2,3,4\n5,6,7,8\n`), p);
  assert.equal(unlabelled.n, 2);
  assert.equal(unlabelled.truth, undefined);
  const refused = (file: string, re: RegExp, line?: number, field?: string) =>
    assert.throws(
      () => readPredictInput(file, p),
      (e: unknown) => e instanceof BadDataError && re.test(e.message) && e.line === line && e.field === field,
    );
  refused(write("nan.csv", `${header}\n1,2,3,4\n1,2,x,4\n`), /"x" is not a number/, 3, "petal_length");
  refused(write("empty.csv", `${header}\n1,2,,4\n`), /missing value/, 2, "petal_length");
  refused(write("ragged.csv", `${header}\n1,2,3,4\n1,2,3\n`), /ragged row/, 3);
  refused(
    write("nocol.csv", "sepal_length,sepal_width,petal_length\n1,2,3\n"),
    /no such column/,
    1,
    "petal_width",
  );
  refused(join(dir, "absent.csv"), /cannot be read|no such file/i);
  refused(write("none.csv", `${header}\n`), /no records/);
});
