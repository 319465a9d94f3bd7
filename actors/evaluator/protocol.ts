import { z } from "zod";

/** Score the parameters of `version` on the held-out split. */
export const Evaluate = z.strictObject({ type: z.literal("evaluator.eval"), term: z.number().int(), version: z.number().int().min(0) });

/** Commands an evaluator accepts. */
export const EvaluatorCommand = z.discriminatedUnion("type", [Evaluate]);
export type EvaluatorCommand = z.infer<typeof EvaluatorCommand>;
