import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import {
  denseLastAxis,
  expectLastDim,
  oneShape,
  oneTensor,
  sizeArg,
  type BaseLayerArgs,
  type CallKwargs,
  type Shape,
} from "./common.js";
import { LIMITS } from "./limits.js";

/** Activations a {@link PositionDense} may apply (each has a gradient on wasm and cpu). */
export const POSITION_DENSE_ACTIVATIONS = ["linear", "relu", "gelu", "tanh"] as const;
/** One of {@link POSITION_DENSE_ACTIVATIONS}. */
export type PositionDenseActivation = (typeof POSITION_DENSE_ACTIVATIONS)[number];

/** Sizes of a {@link PositionDense}. */
export interface PositionDenseArgs extends BaseLayerArgs {
  /** The input's last dimension, stated so the job spec's bounds can size the layer unbuilt. */
  inputWidth: number;
  units: number;
  /** Default `linear`. */
  activation?: PositionDenseActivation;
}

/**
 * A dense layer applied at every position of a sequence, `[batch, len, inputWidth]` →
 * `[batch, len, units]`: the two halves of a transformer's feed-forward block and the masked-LM
 * head's transform. Stock `Dense` computes the same, but its config does not state its input
 * width, and the job spec's bounds would have to take the whole sequence (`len × width` values)
 * as its fan-in. Weights: `kernel [inputWidth, units]`, `bias [units]`.
 */
export class PositionDense extends tfl.layers.Layer {
  /** The class name a layers config names. */
  static readonly className = "FlockPositionDense";
  readonly inputWidth: number;
  readonly units: number;
  readonly activation: PositionDenseActivation;
  private kernel: tfl.LayerVariable | undefined;
  private bias: tfl.LayerVariable | undefined;

  constructor(args: PositionDenseArgs) {
    super(args);
    const name = `${PositionDense.className} ${args.name ?? ""}`.trim();
    const most = Math.max(LIMITS.ffn, LIMITS.width);
    this.inputWidth = sizeArg(name, "input_width", args.inputWidth, 1, most);
    this.units = sizeArg(name, "units", args.units, 1, most);
    const activation: unknown = args.activation ?? "linear";
    if (!isActivation(activation))
      throw new Error(`${name}: activation must be one of ${POSITION_DENSE_ACTIVATIONS.join(", ")}`);
    this.activation = activation;
  }

  override build(inputShape: Shape | Shape[]): void {
    expectLastDim(this.name, oneShape(inputShape), this.inputWidth, "input_width");
    const glorot = tfl.initializers.glorotUniform({});
    this.kernel = this.addWeight("kernel", [this.inputWidth, this.units], "float32", glorot);
    this.bias = this.addWeight("bias", [this.units], "float32", tfl.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return [...oneShape(inputShape).slice(0, -1), this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      if (!this.kernel || !this.bias) throw new Error(`${this.name} is not built`);
      const x = oneTensor(inputs, this.name);
      return activate(denseLastAxis(x, this.kernel.read(), this.bias.read()), this.activation);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      inputWidth: this.inputWidth,
      units: this.units,
      activation: this.activation,
    };
  }
}
tf.serialization.registerClass(PositionDense);

function isActivation(value: unknown): value is PositionDenseActivation {
  return POSITION_DENSE_ACTIVATIONS.some((a) => a === value);
}

/** GELU as BERT defines it, `x · Φ(x)` with the exact normal CDF (Erf has wasm and cpu kernels). */
function activate(x: tf.Tensor, activation: PositionDenseActivation): tf.Tensor {
  switch (activation) {
    case "linear":
      return x;
    case "relu":
      return tf.relu(x);
    case "tanh":
      return tf.tanh(x);
    case "gelu":
      return tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))));
  }
}
