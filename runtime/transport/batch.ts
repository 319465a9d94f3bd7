import { CHUNK_MARKER } from "../../messages/chunking.js";

/**
 * Batch frames: several frames bound for one subject, published as one NATS message so that the
 * server, the client's parser and the subscriber's callback run once for all of them. A batch
 * starts with 0xc1 (the byte msgpack never uses, shared with chunk frames) and a kind byte that
 * is not a chunk version, so a receiver that does not know batches refuses it as a bad chunk.
 *
 * Batch frame: 0xc1 | 0xba | count u32 | (length u32 | frame bytes) × count.
 */
export const BATCH_KIND = 0xba;
/** Bytes before the first frame of a batch. */
export const BATCH_HEADER_BYTES = 6;

/** Whether a NATS payload is a batch of frames. */
export function isBatch(data: Uint8Array): boolean {
  return data.length >= BATCH_HEADER_BYTES && data[0] === CHUNK_MARKER && data[1] === BATCH_KIND;
}

/** Packs frames into one batch; `bytes` is the batch's total size, as counted by the caller. */
export function encodeBatch(frames: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  out[0] = CHUNK_MARKER;
  out[1] = BATCH_KIND;
  view.setUint32(2, frames.length, true);
  let at = BATCH_HEADER_BYTES;
  for (const f of frames) {
    view.setUint32(at, f.length, true);
    out.set(f, at + 4);
    at += 4 + f.length;
  }
  return out;
}

/**
 * Splits a batch into its frames (views, no copies). Returns undefined when the batch is
 * malformed; the caller then hands the payload on whole, and the wire refuses it as bad input.
 */
export function decodeBatch(data: Uint8Array): Uint8Array[] | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint32(2, true);
  if (count > (data.length - BATCH_HEADER_BYTES) / 4) return undefined;
  const frames: Uint8Array[] = [];
  let at = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + 4 > data.length) return undefined;
    const len = view.getUint32(at, true);
    if (at + 4 + len > data.length) return undefined;
    frames.push(data.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return at === data.length ? frames : undefined;
}
