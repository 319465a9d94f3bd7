/**
 * Largest sizes the transformer layers accept, checked when a layer is constructed (its config
 * may come from the wire) and by the job spec's model bounds before anything is built.
 * @module
 */
export const LIMITS = {
  /** Encoder blocks. */
  layers: 24,
  /** Attention heads per block. */
  heads: 64,
  /** Hidden width (the embedding size). */
  width: 4096,
  /** Longest sequence (the position table's rows). */
  maxLen: 2048,
  /** Vocabulary size (the tokenizer's). */
  vocabulary: 65_536,
  /** Inner width of a feed-forward block. */
  ffn: 16_384,
  /** Classes of a classifier head. */
  classes: 4096,
  /**
   * Most parameters of a transformer sized by its dataset (the job spec's `MAX_MODEL_PARAMETERS`,
   * checked again here because a `tokenizer: "file://DIR"` vocabulary is only known at load).
   */
  params: 16_000_000,
} as const;
