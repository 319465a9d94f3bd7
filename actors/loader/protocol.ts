import { z } from "zod";
import { BatchRef } from "../../messages/index.js";

/** The trainer asks for its next batch of `n` positions. */
export const NextBatch = z.strictObject({
  type: z.literal("loader.next"),
  term: z.number().int(),
  n: z.number().int().min(0),
  coordinator: z.string(),
});
/** Reply: a batch, or null when no samples are free right now (the epoch's last ones are in flight elsewhere). */
export const BatchReady = z.strictObject({ type: z.literal("loader.batch"), batch: BatchRef.nullable() });

/** Commands a data loader accepts. */
export const LoaderCommand = z.discriminatedUnion("type", [NextBatch, BatchReady]);
export type LoaderCommand = z.infer<typeof LoaderCommand>;
