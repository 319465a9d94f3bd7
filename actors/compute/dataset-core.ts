import { SampleIndexError } from "./errors.js";
import type { TokenizerJson } from "./tokenizer.js";

/** A batch of samples: `x` is `n × inputSize` row-major, `y` holds the class index of each row. */
export interface Batch {
  x: Float32Array;
  y: Int32Array;
  n: number;
}

/**
 * A classification dataset with a fixed, deterministic train/test split. Samples are addressed by
 * index within a split (`0 .. trainSize-1`, `0 .. testSize-1`), since the shard ledger hands out
 * index ranges; every process that loads the same dataset sees the same sample at each index.
 */
export interface Dataset {
  readonly name: string;
  readonly trainSize: number;
  readonly testSize: number;
  /** Values per sample (the product of `inputShape`). */
  readonly inputSize: number;
  /** The natural shape of one sample (e.g. `[28, 28, 1]` for MNIST); models may reshape to it. */
  readonly inputShape: readonly number[];
  /** Classes of the labels; 0 for an unlabelled corpus (every label is 0: masked-LM pre-training). */
  readonly numClasses: number;
  /**
   * Present when samples are token ids (a `tokenizer` dataset): each sample is `maxLen` ids in
   * `0 .. vocabulary-1`, handed out as float32 (the transformer's input layer is float32).
   */
  readonly tokens?: DatasetTokens;
  /** How long loading took in this process (or worker thread), in milliseconds. */
  readonly loadMs: number;
  /** Copies the given training samples into a fresh batch; throws {@link SampleIndexError}. */
  trainBatch(indices: readonly number[]): Batch;
  /** Copies the given test samples into a fresh batch; throws {@link SampleIndexError}. */
  testBatch(indices: readonly number[]): Batch;
}

/** What a token-id dataset holds besides its samples: the sizes a transformer takes and the tokenizer. */
export interface DatasetTokens {
  readonly maxLen: number;
  /** The tokenizer's size (ids are `0 .. vocabulary-1`). */
  readonly vocabulary: number;
  readonly tokenizer: TokenizerJson;
}

/** One split as the dataset implementations store it. */
export interface Split {
  labels: Int32Array;
  /** Writes sample `index`'s `inputSize` features into `out` at `offset` (which is zeroed). */
  write(index: number, out: Float32Array, offset: number): void;
}

/** The parts of a {@link Dataset} that are not derived from its splits. */
export type DatasetMeta = Pick<
  Dataset,
  "name" | "inputSize" | "inputShape" | "numClasses" | "loadMs" | "tokens"
>;

/** A split stored densely: `features` is `labels.length × inputSize`. */
export function denseSplit(features: Float32Array, labels: Int32Array, inputSize: number): Split {
  return {
    labels,
    write: (index, out, offset) =>
      out.set(features.subarray(index * inputSize, (index + 1) * inputSize), offset),
  };
}

/** Assembles a {@link Dataset} from its metadata and two splits. */
export function makeDataset(meta: DatasetMeta, train: Split, test: Split): Dataset {
  const gather = (split: Split, which: "train" | "test", indices: readonly number[]): Batch => {
    const size = split.labels.length;
    const x = new Float32Array(indices.length * meta.inputSize);
    const y = new Int32Array(indices.length);
    for (let row = 0; row < indices.length; row++) {
      const idx = indices[row];
      if (idx === undefined || !Number.isInteger(idx) || idx < 0 || idx >= size)
        throw new SampleIndexError(idx ?? NaN, size, which);
      split.write(idx, x, row * meta.inputSize);
      y[row] = split.labels[idx]!; // idx < size = labels.length, checked above
    }
    return { x, y, n: indices.length };
  };
  return {
    ...meta,
    trainSize: train.labels.length,
    testSize: test.labels.length,
    trainBatch: (indices) => gather(train, "train", indices),
    testBatch: (indices) => gather(test, "test", indices),
  };
}
