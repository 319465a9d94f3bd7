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
import { LIMITS } from "./limits.js";

/** Sizes of a {@link LayerNorm}. */
export interface LayerNormArgs extends BaseLayerArgs {
  /** The last dimension, normalised over; stated so the job spec's bounds size the layer unbuilt. */
  width: number;
  /** Added to the variance; default 1e-5. */
  epsilon?: number;
}

/**
 * Layer normalisation over the last axis, `γ · (x − mean) / √(var + ε) + β`, with broadcasting
 * ops only. It computes what stock `LayerNormalization` computes (tested equal), but stock tiles
 * γ, β, the mean and the variance to the input's full shape before its batch-norm op, and tfjs's
 * Tile gradient slices `dy` once per repetition: `batch × len` slice kernels per tensor, per layer,
 * per step. That was most of a transformer step on wasm (a CPU profile of a 1-block, width-32,
 * 32-token classifier: 3.2 s of 12.9 s in those slices). Weights `gamma [width]` (ones) and `beta
 * [width]` (zeros), named as stock's so saved weights match by name.
 */
export class LayerNorm extends tfl.layers.Layer {
  /** The class name a layers config names. */
  static readonly className = "FlockLayerNorm";
  readonly width: number;
  readonly epsilon: number;
  private gamma: tfl.LayerVariable | undefined;
  private beta: tfl.LayerVariable | undefined;

  constructor(args: LayerNormArgs) {
    super(args);
    const name = `${LayerNorm.className} ${args.name ?? ""}`.trim();
    this.width = sizeArg(name, "width", args.width, 1, Math.max(LIMITS.width, LIMITS.ffn));
    const epsilon: unknown = args.epsilon ?? 1e-5;
    if (typeof epsilon !== "number" || !(epsilon > 0 && epsilon <= 1))
      throw new Error(`${name}: epsilon must be a number in (0, 1], got ${String(epsilon)}`);
    this.epsilon = epsilon;
  }

  override build(inputShape: Shape | Shape[]): void {
    expectLastDim(this.name, oneShape(inputShape), this.width, "width");
    this.gamma = this.addWeight("gamma", [this.width], "float32", tfl.initializers.ones());
    this.beta = this.addWeight("beta", [this.width], "float32", tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      if (!this.gamma || !this.beta) throw new Error(`${this.name} is not built`);
      const x = oneTensor(inputs, this.name);
      const axis = x.rank - 1;
      const { mean, variance } = tf.moments(x, axis, true);
      const normalised = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.epsilon)));
      return tf.add(tf.mul(normalised, this.gamma.read()), this.beta.read());
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), width: this.width, epsilon: this.epsilon };
  }
}
tf.serialization.registerClass(LayerNorm);
