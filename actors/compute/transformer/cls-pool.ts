import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { oneShape, oneTensor, type BaseLayerArgs, type CallKwargs, type Shape } from "./common.js";

/**
 * The hidden state at position 0 (the `[CLS]` token), `[batch, len, width]` → `[batch, width]`:
 * what a BERT classifier's pooler and head read. No weights.
 */
export class ClsPool extends tfl.layers.Layer {
  /** The class name a layers config names. */
  static readonly className = "FlockClsPool";

  constructor(args: BaseLayerArgs = {}) {
    super(args);
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = oneShape(inputShape);
    if (shape.length !== 3) throw new Error(`${this.name}: takes [batch, len, width]`);
    return [shape[0] ?? null, shape[2] ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = oneTensor(inputs, this.name);
      const [batch = 0, , width = 0] = x.shape;
      return tf.reshape(tf.slice(x, [0, 0, 0], [batch, 1, width]), [batch, width]);
    });
  }
}
tf.serialization.registerClass(ClsPool);
