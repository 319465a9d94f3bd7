/**
 * The data check a coordinator asks of a node before giving it a trainer: does this node hold the
 * job's `file://` data, with the submitter's hashes? Bounded both ways (wire input is hostile).
 * @module
 */
import { z } from "zod";
import { MAX_DATA_SOURCES, MAX_PROBLEM_CHARS } from "../compute/data-presence.js";

/** The node-local actor name of a node's data checker (`NODE/data-check`). */
export const DATA_CHECK_ACTOR = "data-check";

/** One source to check: a file (with the submitter's sha256 when known) or an image folder. */
export const DataSourceWire = z.strictObject({
  url: z.string().startsWith("file://").max(4096),
  kind: z.enum(["file", "folder"]),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});

/** Does this node hold these sources? Answered with {@link DataChecked}. */
export const CheckData = z.strictObject({
  type: z.literal("data.check"),
  job: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  sources: z.array(DataSourceWire).min(1).max(MAX_DATA_SOURCES),
});

/** Commands a data checker accepts. */
export const DataCheckCommand = z.discriminatedUnion("type", [CheckData]);
export type DataCheckCommand = z.infer<typeof DataCheckCommand>;

/**
 * The answer: what keeps the answering node from training ([] when nothing). It names no node:
 * the asker attributes it to the node it asked, so an answer speaks only for its sender.
 */
export const DataChecked = z.strictObject({
  type: z.literal("data.checked"),
  problems: z.array(z.string().max(MAX_PROBLEM_CHARS)).max(MAX_DATA_SOURCES),
});
export type DataChecked = z.infer<typeof DataChecked>;

/** The messages of the data check, for a node's registry. */
export const DATA_CHECK_MESSAGES = [DataCheckCommand, DataChecked];
