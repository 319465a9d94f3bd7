import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { SavedModelError } from "./errors.js";
import { fileUrlProblem } from "./dataset-spec.js";
import type { SavedWeight } from "./fine-tune.js";

/**
 * Reads the weights of a model written by `flock train --out` (the tfjs LayersModel format:
 * `model.json` and the weight files its manifest lists). Bytes are read whole and decoded in
 * manifest order with no arithmetic, so every node reading the same files gets the same bits.
 * @module
 */

/** Largest `model.json` read (the job spec bounds a model config to 1 MiB; the manifest adds little). */
const MODEL_JSON_BYTES = 4 << 20;
/** Most parameters read: the job spec's bound on a model (`MAX_MODEL_PARAMETERS`, 64 MiB of float32). */
const MAX_SAVED_PARAMETERS = 16_000_000;

/**
 * The folder of an `init: "file:///DIR"` URL when it holds a readable `model.json`; throws
 * {@link SavedModelError} saying what is missing. Cheap (a stat and an access check), so a
 * node runs it before it takes part in a job.
 */
export function checkSavedModelDir(url: string): string {
  const problem = fileUrlProblem(url);
  if (problem) throw new SavedModelError(url, problem);
  const dir = fileURLToPath(url);
  const modelJson = join(dir, "model.json");
  try {
    if (!statSync(dir).isDirectory())
      throw new SavedModelError(dir, "is not a folder (give the folder `flock train --out` wrote)");
    accessSync(modelJson, constants.R_OK);
  } catch (error) {
    if (error instanceof SavedModelError) throw error;
    throw new SavedModelError(dir, `has no readable model.json (${(error as Error).message})`, {
      cause: error,
    });
  }
  return dir;
}

interface ManifestGroup {
  paths: string[];
  weights: { name: string; shape: number[]; dtype?: string; quantization?: unknown }[];
}

/** The manifest of `model.json`, checked field by field (the file is the user's, not ours). */
function manifestOf(dir: string, text: string): ManifestGroup[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SavedModelError(join(dir, "model.json"), `is not JSON: ${(error as Error).message}`);
  }
  const manifest = (json as { weightsManifest?: unknown } | null)?.weightsManifest;
  const bad = (what: string) => new SavedModelError(join(dir, "model.json"), what);
  if (!Array.isArray(manifest)) throw bad("has no weightsManifest array");
  return manifest.map((g: unknown, i): ManifestGroup => {
    const group = g as Partial<ManifestGroup> | null;
    if (!Array.isArray(group?.paths) || !group.paths.every((p) => typeof p === "string"))
      throw bad(`weightsManifest[${i}].paths is not a list of file names`);
    if (!Array.isArray(group.weights)) throw bad(`weightsManifest[${i}].weights is not a list`);
    for (const w of group.weights) {
      const ok =
        typeof w?.name === "string" &&
        Array.isArray(w.shape) &&
        w.shape.every((d) => Number.isInteger(d) && d >= 0);
      if (!ok) throw bad(`weightsManifest[${i}] has a weight without a name or an integer shape`);
      if ((w.dtype ?? "float32") !== "float32" || w.quantization !== undefined)
        throw bad(
          `weight ${w.name} is ${w.quantization ? "quantised" : w.dtype}; init reads float32 weights only`,
        );
    }
    return { paths: group.paths, weights: group.weights };
  });
}

/** A weight file's bytes; its path must stay inside the model's folder. */
function readWeightFile(dir: string, path: string): Buffer {
  const file = normalize(join(dir, path));
  if (isAbsolute(path) || !file.startsWith(normalize(dir + sep)))
    throw new SavedModelError(join(dir, "model.json"), `weight file "${path}" is outside the model's folder`);
  try {
    return readFileSync(file);
  } catch (error) {
    throw new SavedModelError(file, `cannot be read: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The saved weights of the model in `url`'s folder, in manifest order; throws
 * {@link SavedModelError} naming the file for a missing folder, a malformed manifest, weights
 * that are not float32, or weight files shorter or longer than the manifest says.
 */
export function readSavedWeights(url: string): SavedWeight[] {
  const dir = checkSavedModelDir(url);
  const modelJson = join(dir, "model.json");
  if (statSync(modelJson).size > MODEL_JSON_BYTES)
    throw new SavedModelError(modelJson, `is larger than ${MODEL_JSON_BYTES} bytes`);
  const out: SavedWeight[] = [];
  let total = 0;
  for (const group of manifestOf(dir, readFileSync(modelJson, "utf8"))) {
    const bytes = Buffer.concat(group.paths.map((p) => readWeightFile(dir, p)));
    let at = 0;
    for (const w of group.weights) {
      const size = w.shape.reduce((a, b) => a * b, 1);
      total += size;
      if (total > MAX_SAVED_PARAMETERS)
        throw new SavedModelError(modelJson, `holds more than ${MAX_SAVED_PARAMETERS} parameters`);
      if (at + 4 * size > bytes.length)
        throw new SavedModelError(
          modelJson,
          `weight ${w.name} runs past the end of ${group.paths.join(", ")}`,
        );
      // A copy into a fresh, aligned buffer: file bytes are little-endian float32, as on every target.
      const values = new Float32Array(size);
      new Uint8Array(values.buffer).set(bytes.subarray(at, at + 4 * size));
      at += 4 * size;
      out.push({ name: w.name, shape: w.shape, values });
    }
    if (at !== bytes.length)
      throw new SavedModelError(
        modelJson,
        `${group.paths.join(", ")} hold ${bytes.length} bytes, the manifest ${at}`,
      );
  }
  return out;
}
