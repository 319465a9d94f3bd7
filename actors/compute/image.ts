import jpeg from "jpeg-js";
import { PNG } from "pngjs";

/**
 * Image decoding and resizing for the `images` dataset format: PNG (pngjs) and JPEG (jpeg-js),
 * both pure JS, so every node decodes the same bytes to the same pixels; bilinear resizing with
 * half-pixel centres (as `tf.image.resizeBilinear(..., halfPixelCenters: true)`) in float64, so
 * it is deterministic too. Pure apart from the decoders: no file I/O.
 * @module
 */

/** An image file's kind, from its first bytes (not its name). */
export type ImageKind = "png" | "jpeg";

/** A decoded image: `width × height` RGBA pixels, row-major, 4 bytes each. */
export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A file that is not a PNG or JPEG, or one that does not decode; the message says which. */
export class ImageDecodeError extends Error {
  override name = "ImageDecodeError";
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The kind of image `bytes` hold by their signature, or undefined when neither PNG nor JPEG. */
export function imageKind(bytes: Uint8Array): ImageKind | undefined {
  if (PNG_MAGIC.every((b, i) => bytes[i] === b)) return "png";
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  return undefined;
}

/**
 * Decodes a PNG or JPEG to RGBA; throws {@link ImageDecodeError} for another kind, a corrupt
 * file, or one of more than `maxPixels` pixels (checked before the pixels are allocated).
 */
export function decodeImage(bytes: Uint8Array, maxPixels: number): Rgba {
  const kind = imageKind(bytes);
  if (kind === undefined) throw new ImageDecodeError("is neither a PNG nor a JPEG file (by its first bytes)");
  if (kind === "png") {
    // IHDR is always the first chunk: width and height are big-endian at bytes 16 and 20.
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const ihdr = String.fromCharCode(...bytes.subarray(12, 16));
    if (bytes.length < 24 || ihdr !== "IHDR")
      throw new ImageDecodeError("cannot be decoded as PNG: no IHDR header after the signature");
    const pixels = view.getUint32(16) * view.getUint32(20);
    if (pixels > maxPixels)
      throw new ImageDecodeError(`has ${pixels} pixels, more than the limit of ${maxPixels}`);
    try {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return { width: png.width, height: png.height, data: new Uint8Array(png.data) };
    } catch (error) {
      throw new ImageDecodeError(`cannot be decoded as PNG: ${(error as Error).message}`, { cause: error });
    }
  }
  try {
    const img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      tolerantDecoding: false,
      maxResolutionInMP: maxPixels / 1e6,
      maxMemoryUsageInMB: 512,
    });
    return { width: img.width, height: img.height, data: img.data };
  } catch (error) {
    throw new ImageDecodeError(`cannot be decoded as JPEG: ${String((error as Error).message ?? error)}`, {
      cause: error,
    });
  }
}

/**
 * Writes `img` resized to `height × width` with `channels` (1: luminance 0.299 R + 0.587 G +
 * 0.114 B; 3: RGB; alpha is dropped) into `out` at `offset`, values in [0, 1], layout HWC.
 * Bilinear with half-pixel centres, edges clamped: a same-size resize copies the pixels.
 */
export function resizeInto(
  img: Rgba,
  height: number,
  width: number,
  channels: 1 | 3,
  out: Float32Array,
  offset: number,
): void {
  const sy = img.height / height;
  const sx = img.width / width;
  const at = (x: number, y: number, c: number) => img.data[(y * img.width + x) * 4 + c] ?? 0;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), img.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, img.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), img.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, img.width - 1);
      const wx = fx - x0;
      const rgb = [0, 1, 2].map((c) => {
        const top = at(x0, y0, c) * (1 - wx) + at(x1, y0, c) * wx;
        const bottom = at(x0, y1, c) * (1 - wx) + at(x1, y1, c) * wx;
        return (top * (1 - wy) + bottom * wy) / 255;
      }) as [number, number, number];
      const o = offset + (y * width + x) * channels;
      if (channels === 1) out[o] = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
      else out.set(rgb, o);
    }
  }
}
