import { test } from "node:test";
import assert from "node:assert/strict";
import type * as tfc from "@tensorflow/tfjs-core";
import { selectBackend } from "../../actors/compute/backend.js";
import { createPrng } from "../../actors/compute/prng.js";
import { CLS_ID, MASK_ID, PAD_ID, SEP_ID, UNK_ID } from "../../actors/compute/tokenizer.js";
import {
  NOT_MASKED,
  maskTokens,
  maskedAccuracy,
  maskedLmLoss,
  perplexity,
} from "../../actors/compute/transformer/mlm.js";
import { gradCheck, pseudoRandom } from "./transformer-gradcheck.js";

const VOCAB = 1000;

/** Rows as the tokenizer makes them: [CLS], `len` tokens (some [UNK]), [SEP], then [PAD]s. */
function syntheticBatch(rows: number, maxLen: number, seed: number): Int32Array {
  const rng = createPrng(seed);
  const ids = new Int32Array(rows * maxLen); // [PAD]
  for (let r = 0; r < rows; r++) {
    const len = rng.nextInt(maxLen - 1); // 0..maxLen-2 tokens: some rows are empty
    const row = r * maxLen;
    ids[row] = CLS_ID;
    for (let i = 1; i <= len; i++) ids[row + i] = rng.next() < 0.05 ? UNK_ID : 5 + rng.nextInt(VOCAB - 5);
    ids[row + len + 1] = SEP_ID;
  }
  return ids;
}

const sameArray = (a: ArrayLike<number>, b: ArrayLike<number>): boolean =>
  a.length === b.length && Array.from(a).every((x, i) => x === b[i]);

test("masking is deterministic per (seed, step) and differs across steps and seeds", () => {
  const ids = syntheticBatch(64, 32, 1);
  const opts = { seed: 7, step: 3, vocabSize: VOCAB, maxLen: 32 };
  const a = maskTokens(ids, opts);
  const b = maskTokens(ids, opts);
  assert.ok(sameArray(a.input, b.input) && sameArray(a.targets, b.targets));
  assert.ok(!sameArray(a.targets, maskTokens(ids, { ...opts, step: 4 }).targets), "step 4 masks as step 3");
  assert.ok(!sameArray(a.targets, maskTokens(ids, { ...opts, seed: 8 }).targets), "seed 8 masks as seed 7");
});

test("a row masks the same wherever it sits in the batch (depends on its content only)", () => {
  const ids = syntheticBatch(16, 32, 2);
  const opts = { seed: 7, step: 3, vocabSize: VOCAB, maxLen: 32 };
  const whole = maskTokens(ids, opts);
  for (const r of [0, 5, 15]) {
    const alone = maskTokens(ids.slice(r * 32, (r + 1) * 32), opts);
    assert.ok(sameArray(alone.input, whole.input.slice(r * 32, (r + 1) * 32)), `row ${r} input`);
    assert.ok(sameArray(alone.targets, whole.targets.slice(r * 32, (r + 1) * 32)), `row ${r} targets`);
  }
});

test("15 % of candidates chosen per row and the 80/10/10 split lies in the binomial 5-sigma band", (t) => {
  const rows = 4000;
  const maxLen = 64;
  const ids = syntheticBatch(rows, maxLen, 3);
  const { input, targets, weights, count } = maskTokens(ids, { seed: 11, step: 0, vocabSize: VOCAB, maxLen });
  let expected = 0;
  let candidates = 0;
  for (let r = 0; r < rows; r++) {
    let n = 0;
    let chosen = 0;
    for (let i = r * maxLen; i < (r + 1) * maxLen; i++) {
      if ((ids[i] ?? 0) >= 5) n++;
      if (targets[i] !== NOT_MASKED) chosen++;
    }
    // Exactly BERT's count per row: the rate is not random, so it is checked exactly.
    assert.equal(chosen, n === 0 ? 0 : Math.max(1, Math.round(0.15 * n)), `row ${r}`);
    expected += chosen;
    candidates += n;
  }
  assert.equal(count, expected);
  assert.equal(
    weights.reduce((s, w) => s + w, 0),
    count,
  );
  assert.ok(Math.abs(count / candidates - 0.15) < 0.01, `rate ${count / candidates}`);
  let masked = 0;
  let replaced = 0;
  let kept = 0;
  targets.forEach((t, i) => {
    if (t === NOT_MASKED) {
      assert.equal(input[i], ids[i], `position ${i} changed though not chosen`);
      return;
    }
    const v = input[i] ?? -1;
    if (v === MASK_ID) masked++;
    else if (v === t) kept++;
    else {
      assert.ok(v >= 5 && v < VOCAB, `random replacement ${v} is special or out of range`);
      replaced++;
    }
  });
  // Each chosen position is an independent draw: [MASK] w.p. 0.8, a uniform ordinary token w.p. 0.1
  // (the original itself w.p. 0.1/995, which then reads as kept), kept w.p. 0.1. The seed is fixed,
  // so these counts are the same on every run (the test cannot flake); the 5-sigma band around the
  // binomial mean only says the measured split is what those probabilities produce.
  const same = 0.1 / (VOCAB - 5);
  t.diagnostic(`${count} of ${candidates} chosen: ${masked} [MASK], ${replaced} random, ${kept} kept`);
  for (const [what, x, p] of [
    ["masked", masked, 0.8],
    ["replaced", replaced, 0.1 - same],
    ["kept", kept, 0.1 + same],
  ] as const) {
    const sigma = Math.sqrt(count * p * (1 - p));
    assert.ok(
      Math.abs(x - count * p) <= 5 * sigma,
      `${what}: ${x} of ${count}, expected ${count * p} ± ${5 * sigma}`,
    );
  }
});

test("specials are never chosen; every row with a real token has a masked position, an empty row none", () => {
  const maxLen = 8;
  const rows = [
    [CLS_ID, 9, SEP_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID], // one token: round(0.15) = 0, still one
    [CLS_ID, SEP_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID], // empty
    [CLS_ID, UNK_ID, UNK_ID, MASK_ID, SEP_ID, PAD_ID, PAD_ID, PAD_ID], // only specials
    [CLS_ID, UNK_ID, 17, UNK_ID, SEP_ID, PAD_ID, PAD_ID, PAD_ID], // one real token among [UNK]s
  ];
  const ids = Int32Array.from(rows.flat());
  for (let step = 0; step < 50; step++) {
    const { targets, input, count } = maskTokens(ids, { seed: 1, step, vocabSize: 30, maxLen });
    assert.equal(count, 2);
    assert.deepEqual(Array.from(targets), [
      NOT_MASKED,
      9,
      ...Array<number>(6 + 8 + 8 + 2).fill(NOT_MASKED),
      17,
      ...Array<number>(5).fill(NOT_MASKED),
    ]);
    targets.forEach((t, i) => t === NOT_MASKED && assert.equal(input[i], ids[i]));
  }
  const big = syntheticBatch(500, 32, 4);
  for (let step = 0; step < 4; step++) {
    const { targets } = maskTokens(big, { seed: 2, step, vocabSize: VOCAB, maxLen: 32 });
    for (let r = 0; r < 500; r++) {
      const row = Array.from(big.slice(r * 32, (r + 1) * 32));
      const chosen = Array.from(targets.slice(r * 32, (r + 1) * 32));
      chosen.forEach((t, i) => t !== NOT_MASKED && assert.ok((row[i] ?? 0) >= 5, `special ${row[i]} chosen`));
      assert.equal(
        chosen.some((t) => t !== NOT_MASKED),
        row.some((id) => id >= 5),
        `row ${r}`,
      );
    }
  }
});

test("maskTokens rejects a ragged batch, a vocabulary of specials only and a bad rate", () => {
  const ids = Int32Array.from([CLS_ID, 7, SEP_ID]);
  assert.throws(() => maskTokens(ids, { seed: 0, step: 0, vocabSize: VOCAB, maxLen: 2 }), RangeError);
  assert.throws(() => maskTokens(ids, { seed: 0, step: 0, vocabSize: 5, maxLen: 3 }), RangeError);
  assert.throws(
    () => maskTokens(ids, { seed: 0, step: 0, vocabSize: VOCAB, maxLen: 3, rate: 0 }),
    RangeError,
  );
});

for (const backend of ["wasm", "cpu"] as const) {
  test(`${backend}: the masked-LM loss, accuracy and perplexity of a hand example`, async () => {
    const { tf } = await selectBackend(backend);
    // Position 0: uniform over 3 → ln 3. Position 1: softmax [1/5, 3/5, 1/5], target 1 → ln(5/3).
    // Position 2 is not masked; its huge wrong logit must not count. Sum ln 5 over 2 positions.
    const logits = tf.tensor3d([
      [
        [0, 0, 0],
        [0, Math.log(3), 0],
        [50, -50, 0],
      ],
    ]);
    const targets = Int32Array.from([0, 1, NOT_MASKED]);
    const { lossSum, count } = maskedLmLoss(tf, logits, targets);
    assert.equal(count, 2);
    const value = lossSum.dataSync()[0] ?? NaN;
    assert.ok(Math.abs(value - Math.log(5)) < 1e-5, `loss ${value}`);
    assert.ok(Math.abs(perplexity(value, count) - Math.sqrt(5)) < 1e-5);
    assert.ok(Number.isNaN(perplexity(0, 0)));
    // argmax per position: 0 (ties → first index), 1, 0. Position 0 target 0 right, position 1 right.
    assert.deepEqual(maskedAccuracy(tf, logits, targets), { correct: 2, count: 2, accuracy: 1 });
    assert.deepEqual(maskedAccuracy(tf, logits, Int32Array.from([2, 1, 1])), {
      correct: 1,
      count: 3,
      accuracy: 1 / 3,
    });
    assert.throws(() => maskedLmLoss(tf, logits, Int32Array.from([0, 3, NOT_MASKED])), RangeError);
    assert.throws(() => maskedLmLoss(tf, logits, Int32Array.from([0, 1])), RangeError);
    tf.dispose([logits, lossSum]);
  });

  test(`${backend}: the gradient of the masked-LM loss matches finite differences`, async (t) => {
    const { tf, name, device } = await selectBackend(backend);
    t.diagnostic(`ran on ${name} (${device})`);
    const logits = tf.variable(pseudoRandom(tf, [2, 3, 7], 5, 2));
    const targets = Int32Array.from([3, NOT_MASKED, 0, 6, NOT_MASKED, 3]);
    const loss = (): tfc.Scalar => maskedLmLoss(tf, logits, targets).lossSum;
    const result = gradCheck(tf, loss, [logits]);
    t.diagnostic(
      `${result.checked} coordinates, max |analytic − numeric| ${result.maxAbsError.toExponential(2)}`,
    );
    assert.equal(result.checked, 42);
    assert.deepEqual(result.failures, [], JSON.stringify(result.worst));
    // The closed form, softmax − oneHot at masked positions and exactly 0 elsewhere.
    const grad = tf.tidy(() =>
      tf
        .grad((x: tfc.Tensor) => maskedLmLoss(tf, x, targets).lossSum)(logits)
        .dataSync(),
    );
    const probs = tf.tidy(() => tf.softmax(logits).dataSync());
    targets.forEach((target, p) => {
      for (let v = 0; v < 7; v++) {
        const want = target === NOT_MASKED ? 0 : (probs[p * 7 + v] ?? NaN) - (v === target ? 1 : 0);
        assert.ok(Math.abs((grad[p * 7 + v] ?? NaN) - want) < 1e-6, `position ${p} id ${v}`);
      }
    });
    logits.dispose();
  });
}
