import { isAbsolute, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { z } from "zod";
import { flockUrlName } from "./dataset-shards.js";
import { ImageDatasetSpec, isImagesValue } from "./dataset-images-spec.js";
import { LIMITS as TRANSFORMER_LIMITS } from "./transformer/limits.js";
import { StreamProfile } from "./dataset-stream-spec.js";

/**
 * Bounds on a dataset read from the user's files. Every node that trains or evaluates parses the
 * whole file in a worker thread whose heap is limited (1 GiB, see `worker.ts`), so a file past
 * these is refused with a clear error rather than an out-of-memory crash halfway.
 */
export const DATA_LIMITS = {
  /** Largest file read, in bytes (train and test file each). */
  fileBytes: 32 * 1024 * 1024,
  /** Most records (rows or lines) in one file. */
  records: 200_000,
  /** Most numeric feature columns. */
  features: 2048,
  /** Most distinct classes. */
  classes: 1000,
  /** Largest text vocabulary. */
  vocabSize: 20_000,
  /** Most dense feature values held (records × numeric features): 256 MB of float32. */
  denseValues: 64 * 1024 * 1024,
} as const;

/** Vocabulary size of a `text` field when the spec does not say. */
export const DEFAULT_VOCAB_SIZE = 1000;
/** Test fraction when the spec names no test split. */
export const DEFAULT_TEST_FRACTION = 0.2;

/** Why a `flock://` URL does not name a stored dataset, or undefined when it does. */
function flockUrlProblem(url: string): string | undefined {
  return flockUrlName(url) === undefined
    ? `"${url}" does not name a stored dataset (flock://NAME: letters, digits, _ or -)`
    : undefined;
}

/** Why a string is not an absolute `file://` URL, or undefined when it is one. */
export function fileUrlProblem(url: string): string | undefined {
  if (!url.startsWith("file://")) return `"${url}" is not a file:// URL`;
  try {
    const path = fileURLToPath(url);
    return isAbsolute(path) ? undefined : `"${url}" does not name an absolute path`;
  } catch (error) {
    return `"${url}" is not a valid file:// URL (${(error as Error).message})`;
  }
}

/** A dataset file: a `file://` URL, or `flock://NAME`, a dataset `flock data put` stored in the cluster. */
const FileUrl = z
  .string()
  .max(4096)
  .superRefine((url, ctx) => {
    const problem = url.startsWith("flock://") ? flockUrlProblem(url) : fileUrlProblem(url);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });
const Field = z.string().min(1).max(256);

/** WordPiece vocabulary size of a `tokenizer` when the spec does not say (specials included). */
export const DEFAULT_TOKENIZER_VOCAB = 2000;
/** Tokens per sample of a `tokenizer` when the spec does not say (`[CLS]` and `[SEP]` included). */
export const DEFAULT_MAX_LEN = 64;

/**
 * How a `text` field becomes token ids for a transformer: a WordPiece vocabulary of `vocabSize`
 * learned from the training split at load, or `file:///ABS/DIR`, the tokenizer (and `maxLen`)
 * of a model `flock train --out` wrote to DIR (its `flock.json`), so fine-tuning reads text the
 * way pre-training did.
 */
export const TokenizerSpec = z.union([
  z.strictObject({
    vocabSize: z.number().int().min(8).max(TRANSFORMER_LIMITS.vocabulary).optional(),
    maxLen: z.number().int().min(2).max(TRANSFORMER_LIMITS.maxLen).optional(),
  }),
  z
    .string()
    .max(4096)
    .superRefine((url, ctx) => {
      const problem = fileUrlProblem(url);
      if (problem) ctx.addIssue({ code: "custom", message: `tokenizer: ${problem}` });
    }),
]);
/** How a `text` field becomes token ids (see {@link TokenizerSpec}). */
export type TokenizerSpec = z.infer<typeof TokenizerSpec>;

/**
 * A dataset read from the user's files: a CSV (with a header row) or JSONL (one JSON object per
 * line) file, a label column, numeric feature columns (default: every column but the label and
 * the text) and optionally one text column, turned into a tf-idf bag of words. Inputs are laid
 * out as `[standardised features..., vocabSize tf-idf columns]`, so the model's input size is
 * `features.length + vocabSize` whatever the data holds.
 *
 * With `tokenizer`, the `text` field (required) is instead encoded as exactly `maxLen` WordPiece
 * ids, `[CLS] pieces… [SEP] [PAD]…` (input size `maxLen`), for the transformer models; no numeric
 * `features` then, and `label` may be left out: an unlabelled corpus for `task: "mlm"`, whose
 * dataset has `numClasses` 0 and every label 0.
 */
export const FileDatasetSpec = z
  .strictObject({
    source: FileUrl,
    format: z.enum(["csv", "jsonl"]),
    /** Required, except with `tokenizer` (an unlabelled corpus for masked-LM pre-training). */
    label: Field.optional(),
    features: z.array(Field).max(DATA_LIMITS.features).optional(),
    text: Field.optional(),
    /** Columns of the text vocabulary (the most frequent tokens of the training split). */
    vocabSize: z.number().int().min(1).max(DATA_LIMITS.vocabSize).optional(),
    /** Token ids for a transformer instead of a bag of words (see {@link TokenizerSpec}). */
    tokenizer: TokenizerSpec.optional(),
    /** A test file in the same format, or the fraction of `source` held out (split from the job seed). */
    test: z.union([FileUrl, z.strictObject({ fraction: z.number().gt(0).lt(1) })]).optional(),
    /**
     * Stream a `flock://` source shard by shard instead of reading it whole on every node: each
     * trainer fetches and decodes only the shards of the positions it is handed (a `{ fraction }`
     * test split then takes whole shards). See `dataset-stream.ts`.
     */
    stream: z.literal(true).optional(),
    /** Set by the submitter for `stream: true` (see `StreamProfile`); a job file's own is replaced. */
    profile: StreamProfile.optional(),
  })
  .superRefine((s, ctx) => {
    for (const problem of [...tokenizerProblems(s), ...streamProblems(s)])
      ctx.addIssue({ code: "custom", ...problem });
    const used = [...(s.features ?? []), ...(s.text === undefined ? [] : [s.text])];
    if (s.label !== undefined && used.includes(s.label))
      ctx.addIssue({
        code: "custom",
        message: `the label "${s.label}" cannot also be an input`,
        path: ["label"],
      });
    if (s.text !== undefined && s.features?.includes(s.text))
      ctx.addIssue({
        code: "custom",
        message: `"${s.text}" cannot be both text and a feature`,
        path: ["text"],
      });
    if (new Set(s.features).size !== (s.features?.length ?? 0))
      ctx.addIssue({ code: "custom", message: "features are listed more than once", path: ["features"] });
  });
/** What `tokenizer` rules out or needs in a {@link FileDatasetSpec}. */
function tokenizerProblems(s: {
  label?: string | undefined;
  features?: string[] | undefined;
  text?: string | undefined;
  vocabSize?: number | undefined;
  tokenizer?: TokenizerSpec | undefined;
}): { message: string; path: string[] }[] {
  if (s.tokenizer === undefined)
    return s.label === undefined
      ? [{ message: "a label is required (only a tokenized text corpus may have none)", path: ["label"] }]
      : [];
  const out: { message: string; path: string[] }[] = [];
  if (s.text === undefined)
    out.push({ message: "a tokenizer encodes the text field: give text", path: ["text"] });
  if (s.features !== undefined)
    out.push({
      message: "features cannot be combined with tokenizer (a transformer reads token ids only)",
      path: ["features"],
    });
  if (s.vocabSize !== undefined)
    out.push({
      message: "vocabSize sizes the bag of words; with tokenizer give tokenizer.vocabSize",
      path: ["vocabSize"],
    });
  return out;
}

/** What `stream: true` rules out or needs in a {@link FileDatasetSpec}. */
function streamProblems(s: {
  source: string;
  text?: string | undefined;
  tokenizer?: TokenizerSpec | undefined;
  stream?: true | undefined;
  profile?: StreamProfile | undefined;
}): { message: string; path: string[] }[] {
  if (s.stream === undefined)
    return s.profile === undefined
      ? []
      : [{ message: "profile is set by the submitter of a stream: true dataset only", path: ["profile"] }];
  const out: { message: string; path: string[] }[] = [];
  if (!s.source.startsWith("flock://"))
    out.push({
      message:
        "stream: true reads a stored dataset shard by shard: the source must be flock://NAME (`flock data put`)",
      path: ["source"],
    });
  if (s.text !== undefined && typeof s.tokenizer !== "string")
    out.push({
      message:
        "a text field is not supported with stream: true unless tokenizer is a file:// export " +
        "(a bag of words or a tokenizer learned at load needs the whole training split in memory)",
      path: ["text"],
    });
  return out;
}

/** A dataset read from the user's files. */
export type FileDatasetSpec = z.infer<typeof FileDatasetSpec>;

const DatasetName = z.string().min(1).max(128);

/** The schema of a dataset object: `format: "images"` is an `ImageDatasetSpec` (dataset-images-spec.ts). */
const objectSchema = (value: unknown) => (isImagesValue(value) ? ImageDatasetSpec : FileDatasetSpec);
type DatasetValue = string | FileDatasetSpec | ImageDatasetSpec;

/**
 * A job's dataset: a built-in name, a {@link FileDatasetSpec} or an `ImageDatasetSpec`. Picked by
 * the input's type rather than by a union, whose error would only say "Invalid input": a user's wrong field gets
 * its own message and path.
 */
export const DatasetSpec = z.unknown().transform((value, ctx): DatasetValue => {
  if (isImagesValue(value) && typeof value === "object" && value !== null && "stream" in value) {
    ctx.addIssue({
      code: "custom",
      message: "stream: true is not supported for images (only csv/jsonl stored with `flock data put`)",
      path: ["stream"],
      input: value,
    });
    return z.NEVER;
  }
  const parsed =
    typeof value === "string" ? DatasetName.safeParse(value) : objectSchema(value).safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues)
    ctx.addIssue({ code: "custom", message: issue.message, path: issue.path, input: value });
  return z.NEVER;
});
/** A job's dataset: a built-in name or a {@link FileDatasetSpec}. */
export type DatasetSpec = z.output<typeof DatasetSpec>;

/** A short name for reports: the built-in name, or the source file's base name. */
export function datasetName(spec: DatasetSpec): string {
  if (typeof spec === "string") return spec;
  return decodeURIComponent(spec.source.slice(spec.source.lastIndexOf("/") + 1)) || spec.source;
}

/**
 * A job file's dataset with plain paths turned into `file://` URLs: a `source`, `test` or `tokenizer` that has
 * no URL scheme is a path, relative to `baseDir` (the job file's folder) unless absolute. Only
 * job files get this; the spec on the wire always carries absolute URLs. Other values pass as is.
 */
export function resolveDataPaths(dataset: unknown, baseDir: string): unknown {
  if (typeof dataset !== "object" || dataset === null || Array.isArray(dataset)) return dataset;
  const asUrl = (v: unknown): unknown =>
    typeof v === "string" && v !== "" && !/^[a-z][a-z0-9+.-]*:/i.test(v)
      ? pathToFileURL(resolve(baseDir, v)).href
      : v;
  const out: Record<string, unknown> = { ...(dataset as Record<string, unknown>) };
  if ("source" in out) out.source = asUrl(out.source);
  if ("test" in out) out.test = asUrl(out.test);
  if ("tokenizer" in out) out.tokenizer = asUrl(out.tokenizer);
  return out;
}
