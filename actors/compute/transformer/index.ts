/**
 * Transformer layers for tfjs-layers, registered (`tf.serialization.registerClass`) on import so
 * that a layers config naming them builds in every process that imports the compute layer, and
 * the registered `text-transformer` / `text-transformer-mlm` configs.
 * @module
 */
export { TokenEmbedding, type TokenEmbeddingArgs } from "./embedding.js";
export { SelfAttention, type SelfAttentionArgs } from "./attention.js";
export {
  PositionDense,
  POSITION_DENSE_ACTIVATIONS,
  type PositionDenseActivation,
  type PositionDenseArgs,
} from "./position-dense.js";
export { ClsPool } from "./cls-pool.js";
export { LayerNorm, type LayerNormArgs } from "./layer-norm.js";
export { lookup } from "./lookup.js";
export { LIMITS as TRANSFORMER_LIMITS } from "./limits.js";
export {
  TRANSFORMER_MODELS,
  TransformerSpec,
  isTransformerSpec,
  transformerConfig,
  transformerParams,
  type TransformerModelName,
} from "./model-config.js";
