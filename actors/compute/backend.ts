import { createRequire } from "node:module";
import { dirname } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
// tfjs-core's Node bundle registers no gradient functions: tfjs-layers' bundle does, on import,
// into core's global registry. Without this import every `tf.grads` call fails ("gradient
// function not found for Sum"). Layers resolves the same single copy of tfjs-core.
import "@tensorflow/tfjs-layers";
import { NoBackendError } from "./errors.js";

/** The module type of tfjs-core, the only tensor API the compute layer uses. */
export type Tf = typeof tf;

/** What a caller asks for: `auto` tries the best first; the others restrict the candidates. */
export type BackendPreference = "auto" | "gpu" | "cpu" | "wasm";

/** The backend actually chosen (reported in status, metrics and job results). */
export type BackendName = "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu";

/** Kernel families a model needs; `conv` rules out wasm (no Conv2DBackpropFilter kernel). */
export type ModelRequirement = "dense" | "conv";

/** A candidate that was not chosen, and why (a failed import, a failed self-check, a missing kernel). */
export interface SkippedBackend {
  backend: BackendName;
  reason: string;
}

/** The outcome of {@link selectBackend}. */
export interface SelectedBackend {
  name: BackendName;
  /** A short device description: `gpu:0`, `cpu:libtensorflow`, `cpu:wasm-simd`, `cpu:wasm`, `cpu:js`. */
  device: string;
  /** The tfjs-core module, with `name`'s backend active. */
  tf: Tf;
  /** The name this backend is registered under in tfjs (`tensorflow`, `wasm`, `cpu`). */
  tfBackend: string;
  /** Candidates tried before `name`, in order. */
  skipped: SkippedBackend[];
  /** Time spent loading and self-checking, in milliseconds. */
  selectMs: number;
}

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /** Kernel families the model needs; default `dense`. */
  requires?: ModelRequirement;
}

/** Candidates per preference, best first. `cpu` prefers native libtensorflow over pure JS. */
const CANDIDATES: Record<BackendPreference, readonly BackendName[]> = {
  auto: ["tensorflow-gpu", "tensorflow", "wasm", "cpu"],
  gpu: ["tensorflow-gpu"],
  cpu: ["tensorflow", "cpu"],
  wasm: ["wasm"],
};

/** Kernels a training step needs beyond the dense ones, per requirement. */
const REQUIRED_KERNELS: Record<ModelRequirement, readonly string[]> = {
  dense: ["BatchMatMul", "Relu", "Softmax", "Sum", "Max"],
  conv: ["BatchMatMul", "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MaxPool", "MaxPoolGrad"],
};

const cache = new Map<string, Promise<SelectedBackend>>();

/**
 * Picks the best backend for `pref` that loads and proves itself with a tiny matmul and gradient,
 * and makes it tfjs's active backend in this thread. `auto` tries tfjs-node-gpu, tfjs-node, wasm,
 * then the pure-JS cpu backend; `gpu` only tfjs-node-gpu; `cpu` tfjs-node then pure JS; `wasm`
 * only wasm. Throws {@link NoBackendError} listing every skipped candidate when none qualifies.
 *
 * The active backend is global to a thread; results are cached per (pref, requires), and a later
 * call re-activates its cached backend. Run engines that need different backends in different
 * threads (see `ComputeWorker`).
 */
export async function selectBackend(
  pref: BackendPreference = "auto",
  options: SelectBackendOptions = {},
): Promise<SelectedBackend> {
  const requires = options.requires ?? "dense";
  const key = `${pref}/${requires}`;
  let pending = cache.get(key);
  if (pending === undefined) {
    pending = select(pref, requires);
    cache.set(key, pending);
    pending.catch(() => cache.delete(key));
  }
  const chosen = await pending;
  await activate(chosen.tfBackend);
  return chosen;
}

/**
 * Makes `tfBackend` tfjs's active backend. Switching to an already initialised backend completes
 * synchronously inside `tf.setBackend`, which is what `ensureActive` relies on.
 */
async function activate(tfBackend: string): Promise<void> {
  if (tf.getBackend() !== tfBackend && !(await tf.setBackend(tfBackend))) {
    throw new NoBackendError(`backend ${tfBackend} could not be re-activated`, []);
  }
}

/** Re-activates `tfBackend` synchronously if another engine in this thread switched away from it. */
export function ensureActive(tfBackend: string): void {
  if (tf.getBackend() === tfBackend) return;
  void tf.setBackend(tfBackend);
  if (tf.getBackend() !== tfBackend) {
    throw new NoBackendError(`backend ${tfBackend} is not initialised in this thread`, []);
  }
}

async function select(pref: BackendPreference, requires: ModelRequirement): Promise<SelectedBackend> {
  const started = performance.now();
  const skipped: SkippedBackend[] = [];
  const candidates = CANDIDATES[pref];
  if (candidates === undefined) throw new RangeError(`unknown backend preference "${String(pref)}"`);
  for (const name of candidates) {
    try {
      const tfBackend = await load(name);
      const missing = REQUIRED_KERNELS[requires].filter((k) => tf.getKernel(k, tfBackend) === undefined);
      if (missing.length > 0) {
        skipped.push({
          backend: name,
          reason: `lacks kernels needed for ${requires}: ${missing.join(", ")}`,
        });
        continue;
      }
      if (!(await tf.setBackend(tfBackend))) throw new Error(`tf.setBackend("${tfBackend}") failed`);
      selfCheck();
      const device = await describeDevice(name);
      if (name === "tensorflow-gpu" && device !== "gpu:0") {
        skipped.push({ backend: name, reason: "tfjs-node-gpu loaded but libtensorflow sees no GPU" });
        continue;
      }
      const selectMs = performance.now() - started;
      return { name, device, tf, tfBackend, skipped, selectMs };
    } catch (err) {
      skipped.push({ backend: name, reason: errorText(err) });
    }
  }
  const reasons = skipped.map((s) => `${s.backend}: ${s.reason}`).join("; ");
  throw new NoBackendError(`no usable backend for preference "${pref}" (${reasons})`, skipped);
}

/** Imports the package behind `name` (registering its backend) and returns its tfjs name. */
async function load(name: BackendName): Promise<string> {
  switch (name) {
    case "tensorflow-gpu":
    case "tensorflow": {
      // Optional packages, usually absent: a variable specifier keeps tsc from resolving them.
      const pkg = name === "tensorflow-gpu" ? "@tensorflow/tfjs-node-gpu" : "@tensorflow/tfjs-node";
      await import(pkg);
      if (tf.engine().registryFactory["tensorflow"] === undefined) {
        throw new Error(`${pkg} loaded but registered no "tensorflow" backend`);
      }
      return "tensorflow";
    }
    case "wasm": {
      const wasm = await import("@tensorflow/tfjs-backend-wasm");
      // In Node the emscripten loader needs the directory of the .wasm files as a path.
      const require = createRequire(import.meta.url);
      const dir = dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm"));
      wasm.setWasmPaths(`${dir}/`);
      return "wasm";
    }
    case "cpu":
      await import("@tensorflow/tfjs-backend-cpu");
      return "cpu";
  }
}

/** A small matmul and the gradient of its sum, compared with values computed by hand. */
function selfCheck(): void {
  // The pure-JS cpu backend prints a "use tfjs-node" banner on first write; the chosen backend
  // is reported by us, so silence tfjs warnings for the check only.
  const prod = tf.env().getBool("PROD");
  tf.env().set("PROD", true);
  try {
    tf.tidy(() => {
      const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
      const b = tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2]);
      const product = Array.from(tf.matMul(a, b).dataSync());
      expectClose("matMul", product, [4, 5, 10, 11]);
      const [grad] = tf.grads((x: tf.Tensor) => tf.sum(tf.matMul(x, b)))([a]);
      expectClose("gradient", grad ? Array.from(grad.dataSync()) : [], [1, 1, 2, 1, 1, 2]);
    });
  } finally {
    tf.env().set("PROD", prod);
  }
}

function expectClose(what: string, actual: number[], expected: number[]): void {
  const ok =
    actual.length === expected.length && actual.every((v, i) => Math.abs(v - (expected[i] ?? NaN)) < 1e-5);
  if (!ok)
    throw new Error(`self-check ${what} gave [${actual.join(", ")}], expected [${expected.join(", ")}]`);
}

async function describeDevice(name: BackendName): Promise<string> {
  switch (name) {
    case "tensorflow-gpu":
    case "tensorflow": {
      // tfjs-node's backend exposes whether libtensorflow placed ops on a GPU.
      const backend: object = tf.backend();
      return "isUsingGpuDevice" in backend && backend.isUsingGpuDevice === true
        ? "gpu:0"
        : "cpu:libtensorflow";
    }
    case "wasm":
      return (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) ? "cpu:wasm-simd" : "cpu:wasm";
    case "cpu":
      return "cpu:js";
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    // A missing optional package is the common case: say so plainly.
    const firstLine = err.message.split("\n", 1)[0] ?? "";
    if (code === "ERR_MODULE_NOT_FOUND") return `not installed (${firstLine})`;
    return firstLine;
  }
  return String(err);
}
