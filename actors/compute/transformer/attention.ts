import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import {
  denseLastAxis,
  expectLastDim,
  shapeList,
  sizeArg,
  type BaseLayerArgs,
  type CallKwargs,
  type Shape,
} from "./common.js";
import { LIMITS } from "./limits.js";

/** Sizes of a {@link SelfAttention}. */
export interface SelfAttentionArgs extends BaseLayerArgs {
  /** Hidden width: the input's last dimension and the output's. */
  width: number;
  /** Heads; must divide `width`. */
  heads: number;
}

/** A score that softmax turns into exactly 0 (exp underflows), without the NaN of -Infinity. */
const MASKED = -1e9;

/**
 * Multi-head scaled dot-product self-attention with a padding mask. Called on two inputs,
 * `[hidden [batch, len, width], ids [batch, len]]`: keys at positions whose id is 0 (`[PAD]`)
 * get no weight, so no output depends on what a padded position holds. The mask comes from the
 * ids as a second input (not tfjs-layers' mask propagation, which its own source marks "not
 * currently implemented" on the symbolic path), so the config states it.
 *
 * Only MatMul, Reshape, Transpose, Softmax and elementwise ops run: their gradients exist on the
 * wasm and cpu backends (tfjs-layers' own MultiHeadAttention uses einsum, which has no gradient).
 * Weights: `query_kernel`, `key_kernel`, `value_kernel`, `output_kernel` `[width, width]` and
 * their `*_bias` `[width]`.
 */
export class SelfAttention extends tfl.layers.Layer {
  /** The class name a layers config names. */
  static readonly className = "FlockSelfAttention";
  readonly width: number;
  readonly heads: number;
  private weightsOf: Record<string, tfl.LayerVariable> = {};

  constructor(args: SelfAttentionArgs) {
    super(args);
    const name = `${SelfAttention.className} ${args.name ?? ""}`.trim();
    this.width = sizeArg(name, "width", args.width, 1, LIMITS.width);
    this.heads = sizeArg(name, "heads", args.heads, 1, LIMITS.heads);
    if (this.width % this.heads !== 0)
      throw new Error(`${name}: heads (${this.heads}) must divide width (${this.width})`);
  }

  override build(inputShape: Shape | Shape[]): void {
    const shapes = shapeList(inputShape);
    const [hidden, ids] = shapes;
    if (shapes.length !== 2 || !hidden || !ids || hidden.length !== 3 || ids.length !== 2)
      throw new Error(`${this.name}: takes [hidden [batch, len, width], ids [batch, len]]`);
    expectLastDim(this.name, hidden, this.width, "width");
    const glorot = tfl.initializers.glorotUniform({});
    for (const part of ["query", "key", "value", "output"]) {
      this.weightsOf[`${part}_kernel`] = this.addWeight(
        `${part}_kernel`,
        [this.width, this.width],
        "float32",
        glorot,
      );
      this.weightsOf[`${part}_bias`] = this.addWeight(
        `${part}_bias`,
        [this.width],
        "float32",
        tfl.initializers.zeros(),
      );
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [hidden] = shapeList(inputShape);
    if (!hidden) throw new Error(`${this.name}: no input shape`);
    return hidden;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      const [hidden, ids] = Array.isArray(inputs) ? inputs : [inputs];
      if (!hidden || !ids) throw new Error(`${this.name}: takes [hidden, ids]`);
      const [batch = 0, len = 0] = hidden.shape;
      const depth = this.width / this.heads;
      // [batch, len, width] → [batch, heads, len, depth]
      const split = (t: tf.Tensor) =>
        tf.transpose(tf.reshape(t, [batch, len, this.heads, depth]), [0, 2, 1, 3]);
      const q = split(denseLastAxis(hidden, this.weight("query_kernel"), this.weight("query_bias")));
      const k = split(denseLastAxis(hidden, this.weight("key_kernel"), this.weight("key_bias")));
      const v = split(denseLastAxis(hidden, this.weight("value_kernel"), this.weight("value_bias")));
      const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(depth));
      // 1 for a real token, 0 for [PAD]; broadcast over heads and query positions.
      const keep = tf.reshape(tf.cast(tf.notEqual(tf.cast(ids, "float32"), 0), "float32"), [
        batch,
        1,
        1,
        len,
      ]);
      const masked = tf.add(tf.mul(scores, keep), tf.mul(tf.sub(1, keep), MASKED));
      const context = tf.matMul(tf.softmax(masked), v);
      const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, len, this.width]);
      return denseLastAxis(merged, this.weight("output_kernel"), this.weight("output_bias"));
    });
  }

  private weight(name: string): tf.Tensor {
    const w = this.weightsOf[name];
    if (!w) throw new Error(`${this.name} is not built`);
    return w.read();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), width: this.width, heads: this.heads };
  }
}
tf.serialization.registerClass(SelfAttention);
