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
  /** Cap on bytes held in incomplete chunk sets, all together, bookkeeping included. */
  maxBufferedBytes: number;
  /** An incomplete set older than this is dropped. */
  timeoutMs: number;
  /** Cap on incomplete sets, all senders together (default 1024). */
  maxOpenSets?: number;
  /**
   * Cap on incomplete sets of one sender (default 64; one sender's sets mostly arrive one after
   * another). The sender is what {@link Reassembler.push} is told (the subject's sender token on a
   * node), else the subject.
   */
  maxSetsPerSender?: number;
  /** Cap on bytes held for one sender, bookkeeping included (default `maxMessageBytes` + 1 MiB). */
  maxSenderBytes?: number;
  /** Smallest data a chunk other than a set's last may carry (default 512 B), so a count stays sane. */
  minChunkBytes?: number;
  now?: () => number;
}

/**
 * Bytes charged for a set's bookkeeping (its record, map entry and id string) and for each part held
 * (its view object and map slot), on top of the data, so a flood of tiny or empty sets meets the cap.
 */
export const SET_OVERHEAD_BYTES = 256;
/** Bytes charged per part held, on top of its data. */
export const PART_OVERHEAD_BYTES = 96;

interface PartialSet {
  sender: string;
  /** Parts by index; a map, so a claimed count allocates nothing. */
  parts: Map<number, Uint8Array>;
  count: number;
  total: number;
  /** Data bytes of every chunk but the last, learnt from the first non-last chunk seen. */
  room: number | undefined;
  dataBytes: number;
  /** Bytes charged against the caps: overhead plus what the parts keep alive. */
  charged: number;
  startedAt: number;
}

interface Sender {
  sets: number;
  charged: number;
}

interface ChunkHeader {
  id: string;
  index: number;
  count: number;
  total: number;
  data: Uint8Array;
}

/**
 * Reassembles chunk frames into whole messages, with a deadline per set and caps on what a peer can
 * make this node hold: open sets (all together and per sender), bytes (all together and per sender,
 * bookkeeping included) and a set's claimed shape, checked before anything is allocated. The sender
 * is the subject the frame came on (a chunk frame carries no sender of its own; subjects carry the
 * publishing node's id, which the server enforces). Incomplete sets past their deadline are dropped
 * by {@link Reassembler.sweep}, which reports how many went, so callers can count them.
 */
export class Reassembler {
  private readonly sets = new Map<string, PartialSet>();
  private readonly senders = new Map<string, Sender>();
  private buffered = 0;
  private readonly now: () => number;
  private readonly maxOpenSets: number;
  private readonly maxSetsPerSender: number;
  private readonly maxSenderBytes: number;
  private readonly minChunkBytes: number;

  constructor(private readonly opts: ReassemblerOptions) {
    this.now = opts.now ?? Date.now;
    this.maxOpenSets = opts.maxOpenSets ?? 1024;
    this.maxSetsPerSender = opts.maxSetsPerSender ?? 64;
    this.maxSenderBytes = opts.maxSenderBytes ?? opts.maxMessageBytes + (1 << 20);
    this.minChunkBytes = opts.minChunkBytes ?? 512;
  }

  /** Bytes charged for incomplete sets: data kept alive plus bookkeeping. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Incomplete sets held. */
  get pending(): number {
    return this.sets.size;
  }

  /** Bytes charged for one sender's incomplete sets. */
  senderBytes(sender: string): number {
    return this.senders.get(sender)?.charged ?? 0;
  }

  /**
   * Adds one chunk frame; returns the whole message when this frame completes its set. A set is
   * known by `scope`, subject and id; the caps per sender charge `origin.sender` (default: the
   * subject), so one reassembler shared by several subscriptions holds one budget per peer.
   */
  push(
    frame: Uint8Array,
    subject?: string,
    origin: { sender?: string; scope?: string } = {},
  ): Uint8Array | undefined {
    const sender = origin.sender ?? subject ?? "";
    const h = readHeader(frame, subject);
    const key = `${origin.scope ?? ""}|${subject ?? ""}|${h.id}`;
    this.checkShape(h, key, subject);
    let set = this.sets.get(key);
    if (!set) set = this.open(key, sender, h, subject);
    else if (set.count !== h.count || set.total !== h.total) {
      this.drop(key);
      throw new MessageDecodeError("chunk-malformed", `chunk set ${h.id} changed its shape mid-way`, subject);
    }
    if (set.parts.has(h.index)) return undefined; // a duplicate frame carries nothing new
    this.checkLength(set, h, key, subject);
    const kept = retain(h.data);
    this.charge(set, key, PART_OVERHEAD_BYTES + kept.charged, subject);
    set.parts.set(h.index, kept.data);
    set.dataBytes += kept.data.length;
    if (set.parts.size < set.count) return undefined;
    this.drop(key);
    return assemble(set);
  }

  /** Drops sets older than the deadline; returns how many were dropped. */
  sweep(): number {
    const cutoff = this.now() - this.opts.timeoutMs;
    let dropped = 0;
    for (const [key, set] of this.sets) {
      if (set.startedAt <= cutoff) {
        this.drop(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** Refuses, before any allocation, a total over the limit or a count no honest sender produces. */
  private checkShape(h: ChunkHeader, key: string, subject: string | undefined): void {
    if (h.total > this.opts.maxMessageBytes) {
      this.drop(key);
      throw new MessageDecodeError(
        "oversized",
        `chunked message of ${h.total} B exceeds the ${this.opts.maxMessageBytes} B limit`,
        subject,
      );
    }
    // Every chunk but the last carries at least minChunkBytes, so count ≤ ⌈total / minChunkBytes⌉.
    if (h.count < 2 || h.index >= h.count || h.count > Math.ceil(h.total / this.minChunkBytes)) {
      this.drop(key);
      throw new MessageDecodeError(
        "chunk-malformed",
        `chunk ${h.index} of ${h.count} for ${h.total} B is inconsistent`,
        subject,
      );
    }
  }

  /** Opens a set if the caps on open sets allow it, charging its bookkeeping. */
  private open(key: string, sender: string, h: ChunkHeader, subject: string | undefined): PartialSet {
    const s = this.senders.get(sender);
    if (this.sets.size >= this.maxOpenSets || (s?.sets ?? 0) >= this.maxSetsPerSender) {
      throw new MessageDecodeError(
        "chunk-overflow",
        `too many incomplete chunk sets (${this.sets.size} open, ${s?.sets ?? 0} from this sender); set refused`,
        subject,
      );
    }
    const set: PartialSet = {
      sender,
      parts: new Map(),
      count: h.count,
      total: h.total,
      room: undefined,
      dataBytes: 0,
      charged: 0,
      startedAt: this.now(),
    };
    this.sets.set(key, set);
    const entry = s ?? { sets: 0, charged: 0 };
    entry.sets++;
    this.senders.set(sender, entry);
    this.charge(set, key, SET_OVERHEAD_BYTES, subject);
    return set;
  }

  /**
   * Checks a chunk's data length against the set's shape: every chunk but the last carries `room`
   * bytes, the last the rest, so the parts add up to `total` exactly once all have come.
   */
  private checkLength(set: PartialSet, h: ChunkHeader, key: string, subject: string | undefined): void {
    const last = h.index === set.count - 1;
    const room = set.room ?? (last ? (set.total - h.data.length) / (set.count - 1) : h.data.length);
    const lastBytes = set.total - (set.count - 1) * room;
    const expected = last ? lastBytes : room;
    const sane = Number.isInteger(room) && room >= this.minChunkBytes && lastBytes >= 1 && lastBytes <= room;
    if (!sane || h.data.length !== expected) {
      this.drop(key);
      throw new MessageDecodeError(
        "chunk-malformed",
        `chunk ${h.index} of set ${h.id} carries ${h.data.length} B, which does not fit ${set.count} chunks of ${set.total} B`,
        subject,
      );
    }
    set.room = room;
  }

  /** Charges bytes to a set, its sender and the whole; over a cap, the set is dropped and refused. */
  private charge(set: PartialSet, key: string, bytes: number, subject: string | undefined): void {
    const sender = this.senders.get(set.sender);
    const senderBytes = sender?.charged ?? 0;
    if (this.buffered + bytes > this.opts.maxBufferedBytes || senderBytes + bytes > this.maxSenderBytes) {
      this.drop(key);
      throw new MessageDecodeError(
        "chunk-overflow",
        `chunk buffers would exceed ${this.opts.maxBufferedBytes} B (${this.maxSenderBytes} B per sender); set dropped`,
        subject,
      );
    }
    set.charged += bytes;
    this.buffered += bytes;
    if (sender) sender.charged += bytes;
  }

  private drop(key: string): void {
    const set = this.sets.get(key);
    if (!set) return;
    this.buffered -= set.charged;
    this.sets.delete(key);
    const sender = this.senders.get(set.sender);
    if (!sender) return;
    sender.sets--;
    sender.charged -= set.charged;
    if (sender.sets === 0) this.senders.delete(set.sender);
  }
}

function readHeader(frame: Uint8Array, subject: string | undefined): ChunkHeader {
  if (frame.length < CHUNK_HEADER_BYTES || frame[0] !== CHUNK_MARKER || frame[1] !== CHUNK_VERSION) {
    throw new MessageDecodeError("chunk-malformed", `malformed chunk frame (${frame.length} B)`, subject);
  }
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  return {
    id: Buffer.from(frame.buffer, frame.byteOffset + 2, 8).toString("hex"),
    index: view.getUint32(10, true),
    count: view.getUint32(14, true),
    total: view.getUint32(18, true),
    data: frame.subarray(CHUNK_HEADER_BYTES),
  };
}

/**
 * What holding a chunk's data costs. A frame may be a view into a larger buffer (a batch frame's
 * frames are views of the batch, and a transport may hand out views of its read buffer): holding
 * the view keeps the whole buffer alive, so such data is copied out and only its length charged;
 * a frame that (nearly) owns its buffer is kept as is and charged the buffer's size.
 */
function retain(data: Uint8Array): { data: Uint8Array; charged: number } {
  const size = data.buffer.byteLength;
  if (size - data.byteLength <= Math.max(4096, data.byteLength / 8)) return { data, charged: size };
  return { data: data.slice(), charged: data.byteLength };
}

function assemble(set: PartialSet): Uint8Array {
  const whole = new Uint8Array(set.total);
  let offset = 0;
  for (let i = 0; i < set.count; i++) {
    const part = set.parts.get(i);
    if (!part) throw new RangeError(`chunk ${i} missing from a complete set`); // unreachable: size === count
    whole.set(part, offset);
    offset += part.length;
  }
  return whole;
}
