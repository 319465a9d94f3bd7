import { z } from "zod";
import { ReducerMap } from "../trainer/protocol.js";

/** Score the parameters of `version` (fetched from the reducers) on the held-out split. */
export const Evaluate = z.strictObject({
  type: z.literal("evaluator.eval"),
  term: z.number().int(),
  version: z.number().int().min(0),
  reducers: ReducerMap,
});

/** Commands an evaluator accepts. */
export const EvaluatorCommand = z.discriminatedUnion("type", [Evaluate]);
export type EvaluatorCommand = z.infer<typeof EvaluatorCommand>;
