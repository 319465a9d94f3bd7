import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import {
  expectLastDim,
  oneShape,
  oneTensor,
  sizeArg,
  type BaseLayerArgs,
  type CallKwargs,
  type Shape,
} from "./common.js";
import { lookup } from "./lookup.js";
import { LIMITS } from "./limits.js";

/** Sizes of a {@link TokenEmbedding} (camel case here; `max_len`, `output_bias` in a job file's JSON). */
export interface TokenEmbeddingArgs extends BaseLayerArgs {
  vocabulary: number;
  maxLen: number;
  width: number;
  /** Adds a `[vocabulary]` bias to the tied output projection (the masked-LM head). */
  outputBias?: boolean;
}

/**
 * Token + position embedding, and the tied output projection of a masked-LM head: one layer so
 * that the head reuses the embedding matrix (one variable, not a copy; the flat parameter vector
 * holds it once and its gradient sums both uses).
 *
 * - Called on token ids `[batch, len]` (any numeric dtype; `len ≤ maxLen`): returns
 *   `embeddings[id] + position_embeddings[position]`, `[batch, len, width]`.
 * - Called on hidden states `[batch, len, width]` (a second node of the same layer in a model):
 *   returns logits over the vocabulary, `h · embeddingsᵀ (+ output_bias)`, `[batch, len, vocabulary]`.
 *
 * Weights: `embeddings [vocabulary, width]`, `position_embeddings [maxLen, width]`, and with
 * `outputBias` `output_bias [vocabulary]`.
 */
export class TokenEmbedding extends tfl.layers.Layer {
  /** The class name a layers config names (`class_name`). */
  static readonly className = "FlockTokenEmbedding";
  readonly vocabulary: number;
  readonly maxLen: number;
  readonly width: number;
  readonly outputBias: boolean;
  private table: tfl.LayerVariable | undefined;
  private positions: tfl.LayerVariable | undefined;
  private bias: tfl.LayerVariable | undefined;

  constructor(args: TokenEmbeddingArgs) {
    super(args);
    const name = `${TokenEmbedding.className} ${args.name ?? ""}`.trim();
    this.vocabulary = sizeArg(name, "vocabulary", args.vocabulary, 2, LIMITS.vocabulary);
    this.maxLen = sizeArg(name, "max_len", args.maxLen, 1, LIMITS.maxLen);
    this.width = sizeArg(name, "width", args.width, 1, LIMITS.width);
    if (args.outputBias !== undefined && typeof args.outputBias !== "boolean")
      throw new Error(`${name}: output_bias must be true or false`);
    this.outputBias = args.outputBias ?? false;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = oneShape(inputShape);
    if (shape.length !== 2)
      throw new Error(`${this.name}: first called on ids [batch, len], got rank ${shape.length}`);
    const init = tfl.initializers.randomNormal({ mean: 0, stddev: 0.02 });
    this.table = this.addWeight("embeddings", [this.vocabulary, this.width], "float32", init);
    this.positions = this.addWeight("position_embeddings", [this.maxLen, this.width], "float32", init);
    if (this.outputBias)
      this.bias = this.addWeight("output_bias", [this.vocabulary], "float32", tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = oneShape(inputShape);
    if (shape.length === 2) return [...shape, this.width];
    if (shape.length === 3) return [shape[0] ?? null, shape[1] ?? null, this.vocabulary];
    throw new Error(`${this.name}: takes ids [batch, len] or hidden states [batch, len, width]`);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs, this.name);
      if (!this.table || !this.positions) throw new Error(`${this.name} is not built`);
      return x.rank === 3
        ? this.project(x, this.table.read())
        : this.embed(x, this.table.read(), this.positions.read());
    });
  }

  private embed(ids: tf.Tensor, table: tf.Tensor, positions: tf.Tensor): tf.Tensor {
    const len = ids.shape[1] ?? 0;
    if (ids.rank !== 2 || len > this.maxLen)
      throw new Error(
        `${this.name}: ids must be [batch, len ≤ ${this.maxLen}], got [${ids.shape.join(", ")}]`,
      );
    const tokens = lookup(table, ids);
    return tf.add(tokens, tf.slice(positions, [0, 0], [len, this.width]));
  }

  private project(hidden: tf.Tensor, table: tf.Tensor): tf.Tensor {
    expectLastDim(this.name, hidden.shape, this.width, "width");
    const flat = tf.reshape(hidden, [-1, this.width]);
    let logits = tf.matMul(flat, table as tf.Tensor2D, false, true);
    if (this.bias) logits = tf.add(logits, this.bias.read());
    return tf.reshape(logits, [...hidden.shape.slice(0, -1), this.vocabulary]);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      vocabulary: this.vocabulary,
      maxLen: this.maxLen,
      width: this.width,
      outputBias: this.outputBias,
    };
  }
}
tf.serialization.registerClass(TokenEmbedding);
