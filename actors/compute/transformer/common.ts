import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";

/**
 * What the transformer layers share: the constructor-argument type of a tfjs-layers `Layer`, the
 * checks that turn a config (which may come from the wire) into sizes, and the shape helpers.
 * @module
 */

/** The arguments every tfjs-layers layer takes (`name`, `trainable`, `batchInputShape`, ...). */
export type BaseLayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** The keyword arguments of `Layer.call`. */
export type CallKwargs = Parameters<tfl.layers.Layer["call"]>[1];

/** A tfjs-layers shape (`null` for an unknown dimension, the batch). */
export type Shape = tfl.Shape;

/** A layer size field: an integer in `[min, max]`, or an Error naming the layer and the field. */
export function sizeArg(layer: string, key: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    throw new Error(`${layer}: ${key} must be an integer from ${min} to ${max}, got ${String(value)}`);
  return value;
}

/** The one shape of a layer called on one input (tfjs passes a list for several). */
export function oneShape(shape: Shape | Shape[]): Shape {
  const [first] = shape;
  if (Array.isArray(first)) return first;
  return shape as Shape; // not a list of shapes: its first element is a dimension
}

/** The shapes of a layer called on a list of inputs. */
export function shapeList(shape: Shape | Shape[]): Shape[] {
  const [first] = shape;
  return Array.isArray(first) ? (shape as Shape[]) : [shape as Shape];
}

/** The tensor of a layer called on one input. */
export function oneTensor(inputs: tf.Tensor | tf.Tensor[], layer: string): tf.Tensor {
  const x = Array.isArray(inputs) ? inputs[0] : inputs;
  if (x === undefined || (Array.isArray(inputs) && inputs.length !== 1))
    throw new Error(`${layer} takes exactly one input`);
  return x;
}

/** A fixed last dimension, checked at build time so a config cannot lie about its sizes. */
export function expectLastDim(layer: string, shape: Shape, expected: number, what: string): void {
  const last = shape.at(-1);
  if (last !== expected)
    throw new Error(`${layer}: input's last dimension is ${String(last)}, but ${what} is ${expected}`);
}

/**
 * `x · kernel + bias` over the last axis of a tensor of any rank ≥ 2 (a position-wise dense
 * layer): reshaped to 2-D so that one plain MatMul runs, whose gradient every backend has.
 */
export function denseLastAxis(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const inner = x.shape.at(-1) ?? 0;
  const units = kernel.shape.at(-1) ?? 0;
  const flat = tf.reshape(x, [-1, inner]);
  const out = tf.add(tf.matMul(flat, kernel as tf.Tensor2D), bias);
  return tf.reshape(out, [...x.shape.slice(0, -1), units]);
}
