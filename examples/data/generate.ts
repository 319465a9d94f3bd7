/**
 * Writes the small example datasets of "Train on your own data" (README), deterministically
 * (mulberry32 from fixed seeds), so the shipped files can be checked against a fresh run:
 *
 *   node dist/examples/data/generate.js [DIR]      # default: examples/data
 *
 * - `flowers.csv`: 600 rows, 4 numeric measurements and a string class (3 species), with class
 *   means close enough that a linear model does not reach 100 %.
 * - `reviews-train.jsonl` / `reviews-test.jsonl`: 800 / 200 short product reviews, `sentiment`
 *   `positive` or `negative`, `stars` an integer, built from word lists with 10 % of the
 *   sentiment words flipped.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createPrng, type Prng } from "../../actors/compute/prng.js";

const SPECIES = [
  { name: "iris-alba", mean: [5.0, 3.4, 1.5, 0.3] },
  { name: "iris-blue", mean: [5.9, 2.8, 4.2, 1.3] },
  { name: "iris-crimson", mean: [6.5, 3.0, 5.4, 2.0] },
];
const SPREAD = [0.45, 0.35, 0.55, 0.3];

function gaussian(rng: Prng): number {
  // Box–Muller; 1 - next() keeps the logarithm's argument in (0, 1].
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

/** The flowers CSV: header, then one row per flower in generation order. */
export function flowersCsv(rows = 600): string {
  const rng = createPrng(0x666c6f77);
  const lines = ["sepal_length,sepal_width,petal_length,petal_width,species"];
  for (let i = 0; i < rows; i++) {
    const s = SPECIES[rng.nextInt(SPECIES.length)]!;
    const values = s.mean.map((m, j) => (m + SPREAD[j]! * gaussian(rng)).toFixed(2));
    lines.push([...values, s.name].join(","));
  }
  return lines.join("\n") + "\n";
}

const GOOD = [
  "great",
  "excellent",
  "love",
  "perfect",
  "sturdy",
  "recommend",
  "happy",
  "fast",
  "beautiful",
  "works",
];
const BAD = [
  "broken",
  "terrible",
  "hate",
  "refund",
  "flimsy",
  "disappointed",
  "slow",
  "ugly",
  "useless",
  "returned",
];
const FILLER = [
  "the",
  "it",
  "this",
  "kettle",
  "lamp",
  "bag",
  "arrived",
  "with",
  "box",
  "and",
  "after",
  "week",
  "my",
  "for",
  "was",
  "very",
  "price",
  "color",
  "size",
  "day",
];

/** `n` reviews as JSONL, one object per line. */
export function reviewsJsonl(n: number, seed: number): string {
  const rng = createPrng(seed);
  const pick = (words: string[]): string => words[rng.nextInt(words.length)]!;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const positive = rng.next() < 0.5;
    const words: string[] = [];
    const length = 8 + rng.nextInt(8);
    for (let w = 0; w < length; w++) {
      if (rng.next() < 0.25) {
        const flipped = rng.next() < 0.1;
        words.push(pick(positive !== flipped ? GOOD : BAD));
      } else words.push(pick(FILLER));
    }
    const stars = positive ? 4 + rng.nextInt(2) : 1 + rng.nextInt(2);
    lines.push(
      JSON.stringify({ review: words.join(" "), stars, sentiment: positive ? "positive" : "negative" }),
    );
  }
  return lines.join("\n") + "\n";
}

/** Writes the three files into `dir`. */
export function writeExampleData(dir: string): void {
  writeFileSync(join(dir, "flowers.csv"), flowersCsv());
  writeFileSync(join(dir, "reviews-train.jsonl"), reviewsJsonl(800, 0x72657631));
  writeFileSync(join(dir, "reviews-test.jsonl"), reviewsJsonl(200, 0x72657632));
}

if (process.argv[1]?.endsWith("generate.js")) writeExampleData(process.argv[2] ?? "examples/data");
