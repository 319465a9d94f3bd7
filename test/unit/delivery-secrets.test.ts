/**
 * Secrets stay out of process listings and logs: NATS secrets read from files, credentials in
 * URLs, tokens and nkey seeds masked by the one `redact()` and by the daemon's logger.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, redact } from "../../runtime/log.js";
import { natsOptions } from "../../tools/cli/options.js";

const SEED = `SU${"A".repeat(56)}`;

test("redact masks URL credentials and nkey seeds, and leaves the rest alone", () => {
  assert.equal(
    redact("cannot connect to nats://alice:s3cret@host:4222,tls://tok3n@h2:4222"),
    "cannot connect to nats://***@host:4222,tls://***@h2:4222",
  );
  assert.equal(redact(`seed ${SEED} here`), "seed S*** here");
  assert.equal(redact("nats://host:4222 and a/b@c"), "nats://host:4222 and a/b@c");
});

test("NATS secrets come from files or NATS_*_FILE variables; an inline flag wins", () => {
  const dir = mkdtempSync(join(tmpdir(), "flock-secrets-"));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const o = natsOptions(
    ["nats://h:1"],
    { passFile: file("pass", "pw\n"), tokenFile: file("token", "tk") },
    "n",
    { NATS_NKEY_SEED_FILE: file("seed", `${SEED}\n`) },
  );
  assert.equal(o.pass, "pw");
  assert.equal(o.token, "tk");
  assert.equal(o.nkeySeed, SEED);
  assert.equal(
    natsOptions(["nats://h:1"], { pass: "inline", passFile: file("p2", "x") }, "n", {}).pass,
    "inline",
  );
  assert.throws(
    () => natsOptions(["nats://h:1"], { passFile: join(dir, "missing") }, "n", {}),
    (e: Error) => e.message.includes("missing") && e.message.includes("ENOENT"),
  );
  assert.throws(() => natsOptions(["nats://h:1"], { tokenFile: file("empty", "") }, "n", {}), /empty/);
});

test("the daemon's logger censors secret fields and masks URLs in messages and errors", () => {
  const lines: string[] = [];
  const log = createLogger({}, "info", { write: (line: string) => void lines.push(line) });
  log.info({ pass: "pw1", opts: { token: "tk1" } }, "connecting to nats://u:pw2@h:4222");
  log.warn({ err: new Error(`cannot reach nats://u:pw3@h:4222 with ${SEED}`) }, "failed");
  const text = lines.join("");
  for (const secret of ["pw1", "tk1", "pw2", "pw3", SEED])
    assert.ok(!text.includes(secret), `${secret} in ${text}`);
  assert.ok(text.includes("nats://***@h:4222"), text);
  assert.ok(text.includes("[redacted]"), text);
});
