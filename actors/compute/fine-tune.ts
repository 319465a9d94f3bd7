import { UnknownFrozenLayerError } from "./errors.js";
import type { WeightInfo } from "./models.js";
import { isPrunable } from "./prune.js";

/**
 * Fine-tuning, decided purely: which layers of a model take saved weights, and which parameter
 * ranges a `freeze` list pins. No file I/O and no tfjs here (`saved-model.ts` reads the files),
 * so every trainer given the same bytes computes the same version 0, and tests need no model.
 * @module
 */

/** One saved weight: its tfjs name (`layer/kernel`), shape and values, in the saved model's order. */
export interface SavedWeight {
  name: string;
  shape: readonly number[];
  values: Float32Array;
}

/** Why a layer of the new model kept its seeded initialisation. */
export interface KeptLayer {
  layer: string;
  reason: string;
}

/** What {@link initFromSaved} did, layer by layer (names in the model's order). */
export interface InitReport {
  /** Layers whose every weight came from the saved model. */
  taken: string[];
  /** Layers that kept the seeded initialisation, each with the reason. */
  kept: KeptLayer[];
  /** Saved layers no layer of the new model took (e.g. the old classification head). */
  unused: string[];
}

/** The layer a weight belongs to: its name up to the last `/` (tfjs names weights `layer/kernel`). */
export function layerOf(weightName: string): string {
  const cut = weightName.lastIndexOf("/");
  return cut < 0 ? weightName : weightName.slice(0, cut);
}

/** The model's weights grouped by layer, in flat order. */
function byLayer(weights: readonly WeightInfo[]): Map<string, WeightInfo[]> {
  const layers = new Map<string, WeightInfo[]>();
  for (const w of weights) {
    const layer = layerOf(w.name);
    layers.set(layer, [...(layers.get(layer) ?? []), w]);
  }
  return layers;
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** Why `layer`'s weights cannot all be taken from `saved`, or undefined when they can. */
function mismatch(
  weights: readonly WeightInfo[],
  saved: ReadonlyMap<string, SavedWeight>,
): string | undefined {
  for (const w of weights) {
    const s = saved.get(w.name);
    if (!s) return `no saved weight ${w.name}`;
    if (!sameShape(w.shape, s.shape))
      return `${w.name} is [${w.shape.join(", ")}], saved [${s.shape.join(", ")}]`;
  }
  return undefined;
}

/**
 * Version 0 of a fine-tuning job: `seeded` (the seeded initialisation, unchanged) with every layer
 * whose weights all have a saved weight of the same name and shape replaced by the saved values.
 * A layer is taken whole or not at all, so a new head (another class count: other shapes) keeps
 * its seeded kernel and bias together. Saved weights are matched by name, never by position.
 */
export function initFromSaved(
  weights: readonly WeightInfo[],
  seeded: Float32Array,
  saved: readonly SavedWeight[],
): { params: Float32Array; report: InitReport } {
  const params = seeded.slice();
  const savedByName = new Map(saved.map((s) => [s.name, s]));
  const report: InitReport = { taken: [], kept: [], unused: [] };
  const used = new Set<string>();
  for (const [layer, ws] of byLayer(weights)) {
    const reason = mismatch(ws, savedByName);
    if (reason !== undefined) {
      report.kept.push({ layer, reason });
      continue;
    }
    for (const w of ws) {
      const s = savedByName.get(w.name)!;
      params.set(s.values.subarray(0, w.size), w.offset);
    }
    used.add(layer);
    report.taken.push(layer);
  }
  report.unused = [...new Set(saved.map((s) => layerOf(s.name)))].filter((l) => !used.has(l));
  return { params, report };
}

/** A half-open range `[start, end)` of the flat parameter vector. */
export interface ParamRange {
  start: number;
  end: number;
}

/**
 * The flat ranges of the frozen layers' weights, in order; throws {@link UnknownFrozenLayerError}
 * for a name that matches no layer with weights (a typo would otherwise train what was meant frozen).
 */
export function frozenRanges(weights: readonly WeightInfo[], freeze: readonly string[]): ParamRange[] {
  const layers = byLayer(weights);
  for (const name of freeze)
    if (!layers.has(name)) throw new UnknownFrozenLayerError(name, [...layers.keys()]);
  const frozen = new Set(freeze);
  return weights
    .filter((w) => frozen.has(layerOf(w.name)))
    .map((w) => ({ start: w.offset, end: w.offset + w.size }));
}

/** Sets the frozen ranges of a gradient to zero, in place: every optimizer then leaves them as they are. */
export function zeroFrozen(grad: Float32Array, ranges: readonly ParamRange[]): void {
  for (const r of ranges) grad.fill(0, r.start, r.end);
}

/**
 * Flat indices of the kernel values that are exactly 0 in `params`, over the layers in `taken`
 * (those whose weights came from a saved model): what `keepZeros` pins after magnitude pruning.
 * Biases are left out, as `prune.ts` never zeroes them. Pure and ordered, so every trainer given
 * the same saved weights computes the same mask.
 */
export function savedZeroIndices(
  weights: readonly WeightInfo[],
  params: Float32Array,
  taken: readonly string[],
): Uint32Array {
  const layers = new Set(taken);
  const out: number[] = [];
  for (const w of weights) {
    if (!layers.has(layerOf(w.name)) || !isPrunable(w.name)) continue;
    for (let i = w.offset; i < w.offset + w.size; i++) if (params[i] === 0) out.push(i);
  }
  return Uint32Array.from(out);
}

/**
 * Sets the gradient entries at `indices` to 0, in place. From the first step on, so an optimizer's
 * state for them stays 0 too (Adam's moments, momentum) and they never move from 0.
 */
export function zeroAt(grad: Float32Array, indices: Uint32Array): void {
  for (const i of indices) grad[i] = 0;
}
