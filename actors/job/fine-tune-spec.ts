import { z } from "zod";
import { fileUrlProblem } from "../compute/dataset-spec.js";
import { BUILTIN_MODELS } from "../compute/model-zoo.js";
import { MAX_MODEL_LAYERS } from "./model-bounds.js";

/**
 * The fine-tuning fields of a job spec: `init` (saved weights to start from) and `freeze` (layers
 * that never change), and their checks against the model config, which need no model build.
 * @module
 */

const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Why `init` is not a usable source, or undefined when it is one. */
export function initProblem(init: string): string | undefined {
  if (init.startsWith("job://")) {
    const id = init.slice("job://".length);
    return JOB_ID.test(id) ? undefined : `"${init}": a job id is letters, digits, - and _ (at most 64)`;
  }
  if (init.startsWith("file://")) return fileUrlProblem(init);
  return `"${init}" is neither file:///ABS/DIR (a folder \`flock train --out\` wrote) nor job://ID`;
}

/**
 * Saved weights a job starts from: `file:///ABS/DIR`, a folder written by `flock train --out`
 * (model.json + weights), or `job://ID`, the model the evaluator of job ID kept in the cluster's
 * object store.
 */
export const InitSource = z
  .string()
  .max(4096)
  .superRefine((init, ctx) => {
    const problem = initProblem(init);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/** Names of layers whose parameters never change; at most one per layer a model may have. */
export const FreezeList = z.array(z.string().min(1).max(256)).max(MAX_MODEL_LAYERS);

/** The layer names of a model config (undefined for a layer without one), or undefined when unreadable. */
export function configLayerNames(model: unknown): (string | undefined)[] | undefined {
  const config: unknown =
    typeof model === "string"
      ? Object.hasOwn(BUILTIN_MODELS, model)
        ? BUILTIN_MODELS[model]
        : undefined
      : typeof model === "object" && model !== null && "modelTopology" in model
        ? model.modelTopology
        : model;
  const inner = (config as { config?: { layers?: unknown } } | undefined)?.config;
  if (!Array.isArray(inner?.layers)) return undefined;
  return inner.layers.map((l: unknown) => {
    const name = (l as { config?: { name?: unknown } } | null)?.config?.name;
    return typeof name === "string" ? name : undefined;
  });
}

/**
 * The problems of a spec's `init`, `freeze` and `keepZeros` (which needs `init`) against its model config: each frozen name must be
 * a layer of the model; with `init` every layer must be named, since saved weights are matched by
 * name and tfjs would otherwise invent names from a per-process counter (replicas could disagree).
 */
export function fineTuneProblems(spec: {
  model: unknown;
  init?: string;
  freeze?: readonly string[];
  keepZeros?: boolean;
}): { path: (string | number)[]; message: string }[] {
  if (spec.keepZeros === true && spec.init === undefined)
    return [
      {
        path: ["keepZeros"],
        message: "keepZeros keeps the zeros of saved weights: give init (file:///DIR or job://ID) too",
      },
    ];
  if (spec.init === undefined && spec.freeze === undefined) return [];
  const names = configLayerNames(spec.model);
  if (!names) return []; // an unreadable model is the model build's error
  const problems: { path: (string | number)[]; message: string }[] = [];
  const unnamed = names.findIndex((n) => n === undefined);
  if (spec.init !== undefined && unnamed >= 0)
    problems.push({
      path: ["init"],
      message: `init matches layers by name: layer ${unnamed} of the model has no config.name`,
    });
  const known = new Set(names);
  for (const [i, layer] of (spec.freeze ?? []).entries())
    if (!known.has(layer))
      problems.push({
        path: ["freeze", i],
        message: `freeze names "${layer}", not a layer of the model (its layers: ${names.filter(Boolean).join(", ")})`,
      });
  if (new Set(spec.freeze).size !== (spec.freeze?.length ?? 0))
    problems.push({ path: ["freeze"], message: "freeze lists a layer more than once" });
  return problems;
}
