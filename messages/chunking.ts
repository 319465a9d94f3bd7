import { randomBytes } from "node:crypto";
import { MessageDecodeError } from "./errors.js";

/**
 * Chunk frames. A whole message travels as its plain msgpack bytes; a message larger than the
 * connection's max payload travels as chunk frames that start with 0xc1, the one byte msgpack
 * never uses, so a receiver tells the two apart without a copy of the common case.
 *
 * Chunk frame: 0xc1 | version u8 | chunk-set id (8 bytes) | index u32 | count u32 | total u32 | data.
 */
export const CHUNK_MARKER = 0xc1;
const CHUNK_VERSION = 1;
/** Bytes of chunk-frame header before the data. */
export const CHUNK_HEADER_BYTES = 22;

/** Whether a frame is a chunk (rather than a whole message). */
export function isChunk(frame: Uint8Array): boolean {
  return frame.length > 0 && frame[0] === CHUNK_MARKER;
}

/** Splits bytes into frames of at most `maxFrame` bytes; a message that fits is returned as is. */
export function splitFrames(bytes: Uint8Array, maxFrame: number): Uint8Array[] {
  if (bytes.length <= maxFrame) return [bytes];
  const room = maxFrame - CHUNK_HEADER_BYTES;
  if (room < 1) throw new RangeError(`max frame of ${maxFrame} bytes leaves no room for chunk data`);
  const count = Math.ceil(bytes.length / room);
  const id = randomBytes(8);
  const frames: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const data = bytes.subarray(index * room, Math.min(bytes.length, (index + 1) * room));
    const frame = new Uint8Array(CHUNK_HEADER_BYTES + data.length);
    const view = new DataView(frame.buffer);
    frame[0] = CHUNK_MARKER;
    frame[1] = CHUNK_VERSION;
    frame.set(id, 2);
    view.setUint32(10, index, true);
    view.setUint32(14, count, true);
    view.setUint32(18, bytes.length, true);
    frame.set(data, CHUNK_HEADER_BYTES);
    frames.push(frame);
  }
  return frames;
}

/** Limits of a {@link Reassembler}. */
export interface ReassemblerOptions {
  /** Largest whole message accepted, in bytes. */
  maxMessageBytes: number;
  /** Cap on bytes held in incomplete chunk sets, all together. */
  maxBufferedBytes: number;
  /** An incomplete set older than this is dropped. */
  timeoutMs: number;
  now?: () => number;
}

interface PartialSet {
  parts: (Uint8Array | undefined)[];
  received: number;
  bytes: number;
  total: number;
  startedAt: number;
}

/**
 * Reassembles chunk frames into whole messages, with a deadline per set and a memory cap over all
 * sets. Incomplete sets past their deadline are dropped by {@link Reassembler.sweep}, which reports
 * how many went, so callers can count them.
 */
export class Reassembler {
  private readonly sets = new Map<string, PartialSet>();
  private buffered = 0;
  private readonly now: () => number;

  constructor(private readonly opts: ReassemblerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Bytes held in incomplete sets. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Incomplete sets held. */
  get pending(): number {
    return this.sets.size;
  }

  /** Adds one chunk frame; returns the whole message when this frame completes its set. */
  push(frame: Uint8Array, subject?: string): Uint8Array | undefined {
    if (frame.length < CHUNK_HEADER_BYTES || frame[0] !== CHUNK_MARKER || frame[1] !== CHUNK_VERSION) {
      throw new MessageDecodeError("chunk-malformed", `malformed chunk frame (${frame.length} B)`, subject);
    }
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const id = Buffer.from(frame.buffer, frame.byteOffset + 2, 8).toString("hex");
    const index = view.getUint32(10, true);
    const count = view.getUint32(14, true);
    const total = view.getUint32(18, true);
    if (total > this.opts.maxMessageBytes) {
      this.drop(id);
      throw new MessageDecodeError(
        "oversized",
        `chunked message of ${total} B exceeds the ${this.opts.maxMessageBytes} B limit`,
        subject,
      );
    }
    if (count < 2 || index >= count || count > total) {
      throw new MessageDecodeError(
        "chunk-malformed",
        `chunk ${index} of ${count} for ${total} B is inconsistent`,
        subject,
      );
    }
    let set = this.sets.get(id);
    if (!set) {
      set = { parts: new Array(count), received: 0, bytes: 0, total, startedAt: this.now() };
      this.sets.set(id, set);
    } else if (set.parts.length !== count || set.total !== total) {
      this.drop(id);
      throw new MessageDecodeError("chunk-malformed", `chunk set ${id} changed its shape mid-way`, subject);
    }
    if (set.parts[index]) return undefined; // a duplicate frame carries nothing new
    const data = frame.subarray(CHUNK_HEADER_BYTES);
    if (this.buffered + data.length > this.opts.maxBufferedBytes) {
      this.drop(id);
      throw new MessageDecodeError(
        "chunk-overflow",
        `chunk buffers would exceed ${this.opts.maxBufferedBytes} B; set dropped`,
        subject,
      );
    }
    if (set.bytes + data.length > total) {
      this.drop(id);
      throw new MessageDecodeError(
        "chunk-malformed",
        `chunk set ${id} carries more than its declared ${total} B`,
        subject,
      );
    }
    set.parts[index] = data;
    set.received++;
    set.bytes += data.length;
    this.buffered += data.length;
    if (set.received < count) return undefined;
    this.drop(id);
    if (set.bytes !== total) {
      throw new MessageDecodeError(
        "chunk-malformed",
        `chunk set ${id} holds ${set.bytes} B, declared ${total} B`,
        subject,
      );
    }
    const whole = new Uint8Array(total);
    let offset = 0;
    for (const part of set.parts) {
      whole.set(part!, offset);
      offset += part!.length;
    }
    return whole;
  }

  /** Drops sets older than the deadline; returns how many were dropped. */
  sweep(): number {
    const cutoff = this.now() - this.opts.timeoutMs;
    let dropped = 0;
    for (const [id, set] of this.sets) {
      if (set.startedAt <= cutoff) {
        this.drop(id);
        dropped++;
      }
    }
    return dropped;
  }

  private drop(id: string): void {
    const set = this.sets.get(id);
    if (!set) return;
    this.buffered -= set.bytes;
    this.sets.delete(id);
  }
}
