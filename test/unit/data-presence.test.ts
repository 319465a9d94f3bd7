/**
 * A node's side of the data check (`actors/compute/data-presence.ts`): the sources of a spec, the
 * hasher's cache (one read per file version, keyed by size, mtime and inode; bounded LRU; shared
 * concurrent reads), the problems a node reports (missing, not a file, other bytes; bounded), and
 * the bounds of the data check's wire messages.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import {
  FileHasher,
  MAX_PROBLEM_CHARS,
  fileSources,
  presenceProblems,
  submittedHashes,
} from "../../actors/compute/data-presence.js";
import { FileDatasetSpec } from "../../actors/compute/dataset-spec.js";
import { CheckData, DataChecked } from "../../actors/data-check/protocol.js";

const dir = mkdtempSync(join(tmpdir(), "flock-presence-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const sha = (text: string): string => createHash("sha256").update(text).digest("hex");

function file(name: string, text: string): { path: string; url: string } {
  const path = join(dir, name);
  writeFileSync(path, text);
  return { path, url: pathToFileURL(path).href };
}

test("fileSources: the file:// source and test of a spec, with the submitted hashes; none for other data", () => {
  const train = file("train.csv", "a,y\n1,p\n");
  const spec = FileDatasetSpec.parse({ source: train.url, format: "csv", label: "y", test: "flock://t" });
  assert.deepEqual(fileSources(spec, { [train.url]: sha("x") }), [
    { url: train.url, kind: "file", sha256: sha("x") },
  ]);
  assert.deepEqual(fileSources(spec), [{ url: train.url, kind: "file" }]);
  assert.deepEqual(fileSources("mnist"), []);
  assert.deepEqual(
    fileSources(FileDatasetSpec.parse({ source: "flock://d", format: "jsonl", label: "y" })),
    [],
  );
});

test("FileHasher reads a file once per version, again when it changes, and keeps at most maxEntries", async () => {
  const f = file("h.csv", "a,y\n1,p\n");
  const hasher = new FileHasher(2);
  const [one, two] = await Promise.all([hasher.sha256(f.path), hasher.sha256(f.path)]);
  assert.equal(one, sha("a,y\n1,p\n"));
  assert.equal(two, one);
  assert.equal(hasher.reads, 1, "concurrent asks share one read");
  await hasher.sha256(f.path);
  assert.equal(hasher.reads, 1, "unchanged: served from the cache");
  writeFileSync(f.path, "a,y\n2,q\n"); // same size, new content
  utimesSync(f.path, new Date(), new Date(Date.now() + 5000)); // the mtime moves on any filesystem
  assert.equal(await hasher.sha256(f.path), sha("a,y\n2,q\n"));
  assert.equal(hasher.reads, 2);
  const g = file("g.csv", "g");
  const h = file("i.csv", "i");
  await hasher.sha256(g.path);
  await hasher.sha256(h.path); // evicts f (least recently used)
  await hasher.sha256(f.path);
  assert.equal(hasher.reads, 5, "f was read again after its eviction");
  await hasher.sha256(h.path);
  assert.equal(hasher.reads, 5, "i stayed");
});

test("presenceProblems: [] when the node holds the file; missing, other bytes and a folder named", async () => {
  const f = file("p.csv", "a,y\n1,p\n");
  const hasher = new FileHasher();
  assert.deepEqual(
    await presenceProblems([{ url: f.url, kind: "file", sha256: sha("a,y\n1,p\n") }], hasher),
    [],
  );
  assert.deepEqual(
    await presenceProblems([{ url: f.url, kind: "file" }], hasher),
    [],
    "no hash: existence only",
  );
  const [other] = await presenceProblems([{ url: f.url, kind: "file", sha256: sha("else") }], hasher);
  assert.equal(
    other,
    `${f.path}: this node's copy differs from the submitted file (sha256 ${sha("else").slice(0, 12)}…)`,
  );
  assert.ok(!other.includes(sha("a,y\n1,p\n").slice(0, 12)), "the node's own digest is not told");
  const gone = pathToFileURL(join(dir, "gone.csv")).href;
  const [missing] = await presenceProblems([{ url: gone, kind: "file", sha256: sha("x") }], hasher);
  assert.match(missing ?? "", /gone\.csv: cannot be read: ENOENT/);
  const [folder] = await presenceProblems([{ url: pathToFileURL(dir).href, kind: "file" }], hasher);
  assert.match(folder ?? "", /is not a regular file/);
  mkdirSync(join(dir, "imgs", "cat"), { recursive: true });
  assert.deepEqual(
    await presenceProblems([{ url: pathToFileURL(join(dir, "imgs")).href, kind: "folder" }], hasher),
    [],
  );
  const [noImages] = await presenceProblems(
    [{ url: pathToFileURL(join(dir, "none")).href, kind: "folder" }],
    hasher,
  );
  assert.ok(noImages, "a missing image folder is a problem");
});

test("a problem text is bounded, and submittedHashes hashes each file:// CSV/JSONL source", async () => {
  const long = pathToFileURL(join(dir, `${"x".repeat(600)}.csv`)).href;
  const [problem] = await presenceProblems([{ url: long, kind: "file" }], new FileHasher());
  assert.equal(problem?.length, MAX_PROBLEM_CHARS);
  const train = file("s-train.jsonl", '{"y":"p"}\n');
  const testFile = file("s-test.jsonl", '{"y":"q"}\n');
  const spec = FileDatasetSpec.parse({ source: train.url, format: "jsonl", label: "y", test: testFile.url });
  assert.deepEqual(await submittedHashes(spec), {
    [train.url]: sha('{"y":"p"}\n'),
    [testFile.url]: sha('{"y":"q"}\n'),
  });
});

test("the data check's wire schemas are bounded: file:// URLs only, at most 4 sources and 4 short problems", () => {
  const source = { url: "file:///d/a.csv", kind: "file", sha256: sha("a") };
  const ask = (sources: unknown[]) => CheckData.safeParse({ type: "data.check", job: "j1", sources });
  assert.ok(ask([source]).success);
  assert.equal(ask([]).success, false, "nothing to check");
  assert.equal(ask(Array(5).fill(source)).success, false, "more than MAX_DATA_SOURCES");
  assert.equal(ask([{ ...source, url: "/etc/passwd" }]).success, false, "not a file:// URL");
  assert.equal(ask([{ ...source, url: `file:///${"x".repeat(5000)}` }]).success, false, "too long");
  assert.equal(ask([{ ...source, sha256: "not-hex" }]).success, false);
  assert.equal(ask([{ ...source, extra: 1 }]).success, false, "strict");
  const answer = (problems: string[]) => DataChecked.safeParse({ type: "data.checked", problems });
  assert.ok(answer([]).success);
  assert.equal(answer(Array<string>(5).fill("x")).success, false);
  assert.equal(answer(["x".repeat(MAX_PROBLEM_CHARS + 1)]).success, false);
  assert.equal(
    DataChecked.safeParse({ type: "data.checked", problems: [], node: "b" }).success,
    false,
    "names no node",
  );
});
