import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidJobSpecError, parseJobSpec } from "../../actors/job/spec.js";
import { MAX_MODEL_PARAMETERS } from "../../actors/job/model-bounds.js";
import { InvalidModelConfigError } from "../../actors/compute/errors.js";
import { TRANSFORMER_LIMITS } from "../../actors/compute/transformer/index.js";
import { sizeForDataset } from "../../actors/compute/transformer/sized.js";

const base = { epochs: 1, globalBatch: 8, optimizer: { name: "adam", lr: 1e-3 } };
const corpus = { source: "file:///data/corpus.jsonl", format: "jsonl", text: "body", tokenizer: {} };
const labelled = { ...corpus, label: "y" };

/** The messages of a spec's problems ([] when it parses). */
function problems(spec: Record<string, unknown>): string[] {
  try {
    parseJobSpec({ ...base, ...spec });
    return [];
  } catch (error) {
    assert.ok(error instanceof InvalidJobSpecError, String(error));
    return [error.message];
  }
}

test("task defaults to classify; older specs parse unchanged", () => {
  const spec = parseJobSpec({ ...base, model: "mnist-mlp", dataset: "mnist" });
  assert.equal(spec.task, "classify");
  assert.equal(spec.mlm, undefined);
});

test("task mlm: rate default 0.15, bounds, on an unlabelled or labelled tokenized corpus", () => {
  const spec = parseJobSpec({
    ...base,
    task: "mlm",
    mlm: {},
    model: "text-transformer-mlm",
    dataset: corpus,
  });
  assert.deepEqual(spec.mlm, { rate: 0.15 });
  const sized = { name: "text-transformer-mlm", layers: 1, width: 16, heads: 2 };
  assert.deepEqual(problems({ task: "mlm", model: sized, dataset: labelled }), []);
  assert.deepEqual(problems({ task: "mlm", mlm: { rate: 1 }, model: sized, dataset: corpus }), []);
  assert.match(
    problems({ task: "mlm", mlm: { rate: 0 }, model: sized, dataset: corpus }).join(),
    /mlm\.rate/,
  );
  assert.match(
    problems({ task: "mlm", mlm: { rate: 1.5 }, model: sized, dataset: corpus }).join(),
    /mlm\.rate/,
  );
  assert.match(problems({ task: "mlm", mlm: { p: 1 }, model: sized, dataset: corpus }).join(), /mlm/);
  assert.match(problems({ task: "guess", model: sized, dataset: corpus }).join(), /task/);
});

test("task mlm refuses a dataset without tokens and a model that does not predict tokens", () => {
  assert.match(
    problems({ task: "mlm", model: "text-transformer-mlm", dataset: "spam-assassin" }).join(),
    /task mlm needs a tokenized text dataset/,
  );
  const bow = { source: "file:///data/x.jsonl", format: "jsonl", text: "body", label: "y" };
  assert.match(
    problems({ task: "mlm", model: "text-transformer-mlm", dataset: bow }).join(),
    /tokenized text/,
  );
  assert.match(
    problems({ task: "mlm", model: "text-transformer", dataset: corpus }).join(),
    /output is \[maxLen, vocabulary\] \(text-transformer-mlm\), not "text-transformer"/,
  );
  assert.match(problems({ task: "mlm", model: "spam-bow", dataset: corpus }).join(), /not "spam-bow"/);
});

test("classify refuses an unlabelled corpus, the MLM model, and mlm options", () => {
  assert.match(
    problems({ model: "text-transformer", dataset: corpus }).join(),
    /a classification job needs labels: this dataset has no label/,
  );
  assert.deepEqual(problems({ model: "text-transformer", dataset: labelled }), []);
  assert.match(
    problems({ model: "text-transformer-mlm", dataset: labelled }).join(),
    /predicts tokens, not classes/,
  );
  assert.match(
    problems({ model: "text-transformer", dataset: labelled, mlm: {} }).join(),
    /mlm options need task "mlm"/,
  );
});

test("the size bound sees a transformer at its tokenizer's vocabulary and maxLen, not the defaults", () => {
  const wide = { name: "text-transformer-mlm", layers: 1, heads: 2, width: 1024 };
  // 1024 × 2000 (the default vocabulary) fits; 1024 × 60 000 does not.
  assert.deepEqual(problems({ task: "mlm", model: wide, dataset: corpus }), []);
  const big = { ...corpus, tokenizer: { vocabSize: 60_000 } };
  assert.match(
    problems({ task: "mlm", model: wide, dataset: big }).join(),
    /at most 16000000 are accepted\n {2}→ at model/,
  );
  assert.match(
    problems({
      task: "mlm",
      model: { name: "text-transformer-mlm", width: 256, heads: 2 }, // 256 × 65 536 alone is 16.8 M
      dataset: { ...corpus, tokenizer: { vocabSize: 65_536, maxLen: 2048 } },
    }).join(),
    /parameters/,
  );
  assert.equal(TRANSFORMER_LIMITS.params, MAX_MODEL_PARAMETERS, "the load-time bound is the job spec's");
});

test("a vocabulary known only at load (file:// tokenizer) is bounded before the model is built", () => {
  const data = { name: "d", numClasses: 0, tokens: { maxLen: 64, vocabulary: 60_000 } };
  assert.throws(
    () => sizeForDataset({ name: "text-transformer-mlm", width: 1024, heads: 2, layers: 1 }, data),
    (e: unknown) =>
      e instanceof InvalidModelConfigError && /vocabulary 60000.*at most 16000000/.test(e.message),
  );
  assert.deepEqual(sizeForDataset({ name: "text-transformer-mlm", width: 16, heads: 2 }, data), {
    name: "text-transformer-mlm",
    width: 16,
    heads: 2,
    maxLen: 64,
    vocabulary: 60_000,
  });
});
