import { z } from "zod";

/** Bench thread → loop thread: run the plain loop of `workload` for `steps` steps. */
export const LoopRequest = z.strictObject({
  type: z.literal("run"),
  id: z.number().int(),
  workload: z.enum(["mnist", "heavy"]),
  steps: z.number().int().min(1),
});
/** A request to a loop thread. */
export type LoopRequest = z.infer<typeof LoopRequest>;

/** Loop thread → bench thread: the loop's throughput, or why it failed. */
export const LoopReply = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("done"),
    id: z.number().int(),
    samplesPerSec: z.number(),
    backend: z.string(),
  }),
  z.strictObject({ type: z.literal("failed"), id: z.number().int(), message: z.string() }),
]);
/** A loop thread's reply. */
export type LoopReply = z.infer<typeof LoopReply>;
