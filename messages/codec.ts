import { Packr } from "msgpackr";
import { checkEnvelope, type Envelope } from "./envelope.js";
import { MessageDecodeError } from "./errors.js";

/** Turns envelopes into bytes and back; typed arrays (Float32Array, ...) round-trip as themselves. */
export interface Codec {
  encode(env: Envelope): Uint8Array;
  /** Decodes and checks the envelope shape; throws {@link MessageDecodeError} on bad bytes. */
  decode(bytes: Uint8Array, subject?: string): Envelope;
}

/**
 * The msgpack codec. Plain msgpack maps (no msgpackr records), so any msgpack reader can inspect
 * traffic; `moreTypes` keeps typed arrays typed. msgpackr never evaluates code while unpacking.
 */
export function createCodec(): Codec {
  const packr = new Packr({
    useRecords: false,
    moreTypes: true,
    structuredClone: false,
    mapsAsObjects: true,
  });
  return {
    encode: (env) => packr.pack(env),
    decode(bytes, subject) {
      let value: unknown;
      try {
        value = packr.unpack(bytes);
      } catch (cause) {
        throw new MessageDecodeError(
          "undecodable",
          `undecodable bytes (${bytes.length} B): ${(cause as Error).message}`,
          subject,
          {
            cause,
          },
        );
      }
      return checkEnvelope(value, subject);
    },
  };
}
