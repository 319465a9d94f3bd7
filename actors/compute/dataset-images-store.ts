/**
 * Image datasets in the cluster's object store (`flock data put DIR`, `"source": "flock://NAME"`
 * with `format: "images"`): one shard record per image, `{ class, file, data }` (the class folder's
 * name, the file's name in it, the file's bytes in base64), in the folder's sorted order. The
 * records ride in the shards of CSV / JSONL datasets (`dataset-shards.ts`: cut, hashed, cached and
 * verified the same way); this module turns a checked folder into records and records back into
 * the images the loader reads, checked as hostile input (a store holds what a submitter wrote).
 * @module
 */
import { z } from "zod";
import type { RawRecord, RawTable } from "./dataset-read.js";
import type { CheckedImageFolder, ClassGroup, ImageEntry, ImageSource } from "./dataset-images.js";
import { IMAGE_LIMITS } from "./dataset-images-spec.js";
import { readStoredTable, type StoredSources } from "./dataset-store-cache.js";
import { BadDataError } from "./errors.js";

/** The fields of a stored image record (the manifest's `columns`). */
export const IMAGE_COLUMNS = ["class", "file", "data"];

/** A folder or file name as a folder listing gives one: no separator, not hidden (dotfiles are skipped). */
const EntryName = z
  .string()
  .min(1)
  .max(255)
  .refine((n) => !n.startsWith(".") && !/[/\\\0]/.test(n), "is not a file or folder name");

const ImageRecord = z.strictObject({
  class: EntryName,
  file: EntryName,
  // base64 of at most IMAGE_LIMITS.fileBytes bytes (longer is refused before it is decoded)
  data: z.string().max(Math.ceil(IMAGE_LIMITS.fileBytes / 3) * 4),
});

/**
 * A checked image folder as the records of a stored dataset, in its sorted order; `file` is the
 * folder (its base name becomes the manifest's `file.name`) and `sha256` the digest a job reading
 * the folder records, so a model trained from the store names the same data.
 */
export function imageTable(folder: CheckedImageFolder): RawTable {
  const records: RawRecord[] = folder.images.map((image, i) => ({
    line: i + 1,
    values: { class: image.className, file: image.name, data: Buffer.from(image.bytes).toString("base64") },
  }));
  return { file: folder.root, columns: [...IMAGE_COLUMNS], records, sha256: folder.sha256 };
}

/** One decoded record: its class, its file and its bytes in base64. */
type Stored = z.infer<typeof ImageRecord>;

/** Decodes a stored record; throws {@link BadDataError} naming the URL and the record. */
function decodeRecord(url: string, r: RawRecord): Stored {
  const parsed = ImageRecord.safeParse(r.values);
  if (!parsed.success)
    throw new BadDataError(url, `is not a stored image: ${parsed.error.issues[0]?.message}`, r.line);
  return parsed.data;
}

/**
 * The images of a stored dataset, as the loader reads a folder: classes in sorted order, files in
 * sorted order within each. Records out of that order (or twice) are refused rather than sorted:
 * `flock data put` writes them sorted, so anything else is not one of its datasets. Errors name
 * `flock://NAME/class/file`.
 */
export function storedImageSource(url: string, stored: StoredSources | undefined): ImageSource {
  // The count is refused before any record is decoded, as a folder's before any image is read.
  const records = stored?.[url]?.manifest.records ?? 0;
  if (records > IMAGE_LIMITS.images)
    throw new BadDataError(url, `holds more than ${IMAGE_LIMITS.images} images (the limit)`);
  const table = readStoredTable(url, "images", stored);
  const groups: ClassGroup[] = [];
  let images: ImageEntry[] = [];
  let previous: Stored | undefined;
  for (const r of table.records) {
    const rec = decodeRecord(url, r);
    if (previous && !inFolderOrder(previous, rec))
      throw new BadDataError(url, `the stored image ${rec.class}/${rec.file} is out of folder order`, r.line);
    if (previous?.class !== rec.class) {
      images = [];
      const group = images;
      groups.push({ name: rec.class, path: `${url}/${rec.class}`, images: () => group });
    }
    // Decoded now (the limit was checked on the base64's length): the bytes live outside the heap,
    // and the records' strings can go once the listing is built.
    const bytes = Buffer.from(rec.data, "base64");
    images.push({
      className: rec.class,
      name: rec.file,
      path: `${url}/${rec.class}/${rec.file}`,
      size: bytes.length,
      read: () => bytes,
    });
    previous = rec;
  }
  return { root: url, groups, sha256: table.sha256 };
}

/** Whether `b` comes after `a` in a folder listing: by class, then by file (code units, as folders are listed). */
function inFolderOrder(a: Stored, b: Stored): boolean {
  return a.class < b.class || (a.class === b.class && a.file < b.file);
}
