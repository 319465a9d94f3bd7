/**
 * scripts/test-deps.sh (npm's pretest) decides what to install without installing anything here:
 * each case runs it with PATH set to a folder of fake programs (`id`, `apt-get` that records its
 * arguments, and whichever of nats-server / chromium / promtool the case has).
 */
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { registerCleanup, spawnChild } from "../helpers/index.js";

const SCRIPT = fileURLToPath(new URL("../../../scripts/test-deps.sh", import.meta.url));
const INSTALL = "apt-get update && apt-get install -y --no-install-recommends";

interface Case {
  uid: number;
  /** Programs on the fake PATH. */
  present: string[];
  apt: boolean;
  /** Programs in the fake sbin folder only. */
  inSbin?: string[];
}

async function fake(dir: string, name: string, body: string): Promise<void> {
  await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
  await chmod(join(dir, name), 0o755);
}

/** Runs the script in a fake world; its exit code, output, and the apt-get calls it made. */
async function run(t: TestContext, c: Case): Promise<{ code: number | null; output: string; apt: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), "flock-test-deps-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bin = join(dir, "bin");
  const sbin = join(dir, "sbin");
  await writeFile(join(dir, "apt.log"), "");
  await Promise.all([mkdir(bin), mkdir(sbin)]);
  await fake(bin, "id", `echo ${c.uid}`);
  if (c.apt) await fake(bin, "apt-get", `echo "$*" >> ${join(dir, "apt.log")}`);
  for (const p of c.present) await fake(bin, p, "exit 0");
  for (const p of c.inSbin ?? []) await fake(sbin, p, "exit 0");
  const child = registerCleanup(
    t,
    spawnChild("/bin/bash", [SCRIPT], { env: { PATH: bin, TEST_DEPS_SBIN: sbin }, name: "test-deps.sh" }),
  );
  const exit = await child.exited;
  const apt = (await readFile(join(dir, "apt.log"), "utf8")).split("\n").filter(Boolean);
  return { code: exit.code, output: child.output(), apt };
}

const ALL = ["nats-server", "chromium", "promtool"];

test("everything present: nothing to do, whoever runs it", async (t) => {
  for (const uid of [0, 1000]) {
    const r = await run(t, { uid, present: ALL, apt: true });
    assert.equal(r.code, 0, r.output);
    assert.deepEqual(r.apt, []);
  }
});

test("nats-server in sbin only (Debian's place, off a user's PATH) counts as present", async (t) => {
  const r = await run(t, {
    uid: 1000,
    present: ["chromium", "promtool"],
    inSbin: ["nats-server"],
    apt: true,
  });
  assert.equal(r.code, 0, r.output);
});

test("missing programs, not root: exits 1 and prints the exact command, installs nothing", async (t) => {
  const r = await run(t, { uid: 1000, present: ["nats-server"], apt: true });
  assert.equal(r.code, 1);
  assert.ok(r.output.includes(`sudo sh -c '${INSTALL} chromium prometheus'`), r.output);
  assert.deepEqual(r.apt, []);
});

test("missing programs, root without apt: exits 1 and prints the command", async (t) => {
  const r = await run(t, { uid: 0, present: ["chromium"], apt: false });
  assert.equal(r.code, 1);
  assert.ok(r.output.includes(`${INSTALL} nats-server prometheus'`), r.output);
});

test("missing programs, root with apt: updates, then installs exactly the missing packages", async (t) => {
  const r = await run(t, { uid: 0, present: ["promtool"], apt: true });
  assert.equal(r.code, 0, r.output);
  assert.deepEqual(r.apt, ["update", "install -y --no-install-recommends nats-server chromium"]);
});
