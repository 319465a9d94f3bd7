import { z } from "zod";
import { flockUrlName } from "./dataset-shards.js";
import { fileUrlProblem } from "./dataset-spec.js";

/**
 * The `images` dataset format's job-spec fields and bounds. Kept apart from `dataset-images.ts`
 * (which decodes) so the job spec's schema does not load the image decoders.
 * @module
 */

/**
 * Bounds on an image dataset. Every node that trains or evaluates decodes every image in a
 * worker thread whose heap is limited (1 GiB, see `worker.ts`), so a folder past these is refused
 * before any image is decoded (counts and file sizes) or before pixels are allocated.
 */
export const IMAGE_LIMITS = {
  /** Most images in one folder (training or test). */
  images: 50_000,
  /** Largest image file, in bytes. */
  fileBytes: 16 * 1024 * 1024,
  /** Most bytes of image files in one folder. */
  folderBytes: 256 * 1024 * 1024,
  /** Most pixels of one decoded image (before resizing). */
  pixels: 16 * 1024 * 1024,
  /** Largest side of the resized input. */
  side: 512,
  /** Most input values held (images × height × width × channels): 256 MB of float32. */
  denseValues: 64 * 1024 * 1024,
} as const;

const DirUrl = z
  .string()
  .max(4096)
  .superRefine((url, ctx) => {
    // flock://NAME: an image folder `flock data put` stored in the cluster
    const problem = url.startsWith("flock://")
      ? flockUrlName(url) === undefined
        ? `"${url}" does not name a stored dataset (flock://NAME: letters, digits, _ or -)`
        : undefined
      : fileUrlProblem(url);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });
const Side = z.number().int().min(1).max(IMAGE_LIMITS.side);

/**
 * An image dataset: `source` is a folder with one sub-folder per class (its name is the class),
 * holding PNG and JPEG files, or `flock://NAME`, such a folder stored by `flock data put DIR`.
 * Each image is resized to `size` (`[height, width]`; default: the first image's) with
 * `channels` (1 grey or 3 RGB; default 3), values in [0, 1]: the model's input is
 * `[height, width, channels]`. `test` is a folder (or a stored one) laid out the same way, or
 * the fraction of `source` held out (split from the job seed).
 */
export const ImageDatasetSpec = z.strictObject({
  source: DirUrl,
  format: z.literal("images"),
  size: z.tuple([Side, Side]).optional(),
  channels: z.union([z.literal(1), z.literal(3)]).optional(),
  test: z.union([DirUrl, z.strictObject({ fraction: z.number().gt(0).lt(1) })]).optional(),
});
/** An image dataset. */
export type ImageDatasetSpec = z.infer<typeof ImageDatasetSpec>;

/** Whether a job spec's raw `dataset` value asks for the `images` format (so it is parsed as one). */
export function isImagesValue(value: unknown): boolean {
  return typeof value === "object" && value !== null && (value as { format?: unknown }).format === "images";
}
