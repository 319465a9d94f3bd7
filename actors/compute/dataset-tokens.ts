/**
 * Token-id datasets: a `text` field encoded by a WordPiece tokenizer as exactly `maxLen` ids,
 * `[CLS] pieces… [SEP] [PAD]…` (see `WordPieceTokenizer.encode`), the input of the transformer
 * models. The tokenizer is learned from the training split at load, or read from a model's
 * `flock.json`; {@link tokenRows} is the one encoder, used by datasets and by `flock predict`.
 * @module
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { DATA_LIMITS, DEFAULT_MAX_LEN, DEFAULT_TOKENIZER_VOCAB, type TokenizerSpec } from "./dataset-spec.js";
import { BadDataError } from "./errors.js";
import { TokenizerJson, WordPieceTokenizer } from "./tokenizer.js";
import { trainWordPiece } from "./tokenizer-train.js";
import { LIMITS } from "./transformer/limits.js";

/** Largest `flock.json` a tokenizer is read from (a 65 536-token vocabulary is about 1 MB). */
export const TOKENIZER_FILE_BYTES = 16 << 20;

/** What a token dataset's preprocessing records (`flock.json`), beside the tokenizer itself. */
export interface TokenPreprocessing {
  /** The text field encoded. */
  field: string;
  /** Ids per sample: the model's input size. */
  maxLen: number;
  /** The tokenizer's size. */
  vocabulary: number;
  /** Where the tokenizer came from (the dataset spec's `tokenizer`), so a test split can be rebuilt. */
  from: TokenizerSpec;
}

/** Rows of token ids, stored compactly; `write` copies row `index` into `out` at `offset` as float32. */
export interface TokenRows {
  /** `rows × maxLen` ids (every vocabulary fits: ids are below `LIMITS.vocabulary` = 65 536). */
  ids: Uint16Array;
  write(index: number, out: Float32Array, offset: number): void;
}

/** The ids of `texts`, `maxLen` per text (truncated, padded with `[PAD]` = 0). */
export function tokenRows(
  tokenizer: WordPieceTokenizer,
  texts: readonly string[],
  maxLen: number,
): TokenRows {
  const ids = new Uint16Array(texts.length * maxLen);
  texts.forEach((text, row) => ids.set(tokenizer.encode(text, maxLen), row * maxLen));
  return {
    ids,
    write: (index, out, offset) => {
      // Uint16 → float32 is exact; set() converts element by element.
      out.set(ids.subarray(index * maxLen, (index + 1) * maxLen), offset);
    },
  };
}

/** The part of a `flock.json` a tokenizer is read from. */
const TokenizerFile = z.object({
  tokenizer: z.unknown(),
  maxLen: z.number().int().min(2).max(LIMITS.maxLen),
});

/**
 * The tokenizer and `maxLen` of a dataset spec's `tokenizer`. An object trains a WordPiece
 * vocabulary on `trainTexts()`, the training split's texts in file order. Deterministic on every
 * node: the split is fixed by the files and the job seed (`dataset-file.ts`), and `trainWordPiece`
 * uses no randomness and breaks every tie by string order. A `file://DIR` URL reads `DIR/flock.json`
 * (hostile: bounded, checked by `TokenizerJson`). Throws {@link BadDataError} naming the file and field.
 */
export function resolveTokenizer(
  spec: TokenizerSpec,
  trainTexts: () => readonly string[],
): { tokenizer: WordPieceTokenizer; maxLen: number } {
  if (typeof spec === "object") {
    const vocabSize = spec.vocabSize ?? DEFAULT_TOKENIZER_VOCAB;
    return { tokenizer: trainWordPiece(trainTexts(), { vocabSize }), maxLen: spec.maxLen ?? DEFAULT_MAX_LEN };
  }
  const file = join(fileURLToPath(spec), "flock.json");
  const json = readJson(file);
  const parsed = TokenizerFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") || undefined;
    throw new BadDataError(
      file,
      `has no tokenizer and maxLen (a model trained on a tokenizer dataset): ${issue?.message ?? "?"}`,
      undefined,
      field,
    );
  }
  const tokenizer = TokenizerJson.safeParse(parsed.data.tokenizer);
  if (!tokenizer.success)
    throw new BadDataError(
      file,
      `invalid tokenizer: ${z.prettifyError(tokenizer.error)}`,
      undefined,
      "tokenizer",
    );
  return { tokenizer: WordPieceTokenizer.fromJSON(tokenizer.data), maxLen: parsed.data.maxLen };
}

function readJson(file: string): unknown {
  let text: string;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new BadDataError(file, "is not a regular file");
    if (stat.size > TOKENIZER_FILE_BYTES)
      throw new BadDataError(file, `is ${stat.size} bytes, more than ${TOKENIZER_FILE_BYTES}`);
    text = readFileSync(file, "utf8");
  } catch (error) {
    if (error instanceof BadDataError) throw error;
    throw new BadDataError(file, `cannot be read: ${(error as Error).message}`, undefined, undefined, {
      cause: error,
    });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BadDataError(file, `is not JSON: ${(error as Error).message}`);
  }
}

/** Refuses splits whose ids would exceed the dense-value bound (records × maxLen). */
export function checkTokenBudget(file: string, records: number, maxLen: number): void {
  if (records * maxLen > DATA_LIMITS.denseValues)
    throw new BadDataError(
      file,
      `${records} records × maxLen ${maxLen} token ids exceed ${DATA_LIMITS.denseValues}`,
    );
}
