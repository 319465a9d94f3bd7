import * as tf from "@tensorflow/tfjs-core";

/**
 * Embedding lookup with a gradient every backend flock chooses can compute. tfjs's own gradient
 * of `gather` needs the UnsortedSegmentSum kernel, which the wasm backend lacks (measured:
 * "Kernel 'UnsortedSegmentSum' not registered for backend 'wasm'"); ScatterNd is registered on
 * wasm and cpu and sums the updates of repeated indices (checked on both: rows looked up twice
 * get twice the gradient), which is exactly the gradient of a lookup.
 * @module
 */

const lookupRows = tf.customGrad((...args) => {
  const [table, ids, save] = args;
  if (!(table instanceof tf.Tensor) || !(ids instanceof tf.Tensor) || typeof save !== "function")
    throw new Error("lookupRows(table, ids) takes two tensors");
  save([ids]);
  const rows = table.shape[0] ?? 0;
  return {
    value: tf.gather(table, ids),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [kept] = saved;
      if (!kept) throw new Error("lookupRows: saved ids missing");
      const indices = tf.reshape(kept, [-1, 1]);
      return [tf.scatterND(indices, dy, [rows, ...table.shape.slice(1)]), tf.zerosLike(kept)];
    },
  };
});

/**
 * Rows of `table` (`[rows, width]`) at `ids` (any shape, any dtype): `[...ids.shape, width]`.
 * Ids are rounded down and clamped to `[0, rows - 1]`: the cpu backend throws on an index out of
 * range and wasm reads past the table, and ids are data (a dataset's values), not code.
 */
export function lookup(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const rows = table.shape[0] ?? 1;
    const values = tf.reshape(tf.cast(ids, "float32"), [-1]);
    // NaN first: float-to-int of NaN differs between backends.
    const finite = tf.where(tf.isNaN(values), tf.zerosLike(values), values);
    const flat = tf.cast(tf.clipByValue(tf.floor(finite), 0, rows - 1), "int32");
    const out = lookupRows(table, flat);
    return tf.reshape(out, [...ids.shape, ...table.shape.slice(1)]);
  });
}
