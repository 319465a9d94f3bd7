import assert from "node:assert/strict";
import { test } from "node:test";
import { registerCleanup, spawnChild, waitFor } from "../helpers/index.js";

const BOUND = { timeout: 20_000 };

/** A node child that runs `script`. */
function node(script: string, name?: string) {
  return spawnChild(process.execPath, ["-e", script], { name });
}

test(
  "waitForLine matches stdout and stderr lines, in order, including lines already printed",
  BOUND,
  async (t) => {
    const child = registerCleanup(
      t,
      node(
        `console.log("ready port=4222"); console.error("warn: x"); setTimeout(() => console.log("step 1"), 50);
       setTimeout(() => console.log("step 2"), 100); setInterval(() => {}, 1000);`,
        "printer",
      ),
    );
    assert.ok(child.pid > 0);
    const m = await child.waitForLine(/ready port=(\d+)/);
    assert.equal(m[1], "4222");
    await child.waitForLine("warn: x"); // stderr, a plain string is matched literally
    assert.match((await child.waitForLine(/step \d/))[0], /step 1/);
    assert.match((await child.waitForLine(/step \d/))[0], /step 2/, "successive waits move forward");
    // stdout and stderr are separate pipes, so only the order within each is guaranteed.
    assert.match(child.output(), /ready port=4222\n(.*\n)*step 1\nstep 2/);
    assert.match(child.output(), /warn: x/);
  },
);

test(
  "waitForLine rejects on timeout with the output, and the stack points at the caller",
  BOUND,
  async (t) => {
    const child = registerCleanup(t, node(`console.log("only this"); setInterval(() => {}, 1000);`, "quiet"));
    await child.waitForLine("only this");
    const started = Date.now();
    await assert.rejects(child.waitForLine("never", 200), (err: Error) => {
      assert.match(err.message, /quiet: timed out after \d+ ms/);
      assert.match(err.message, /only this/);
      assert.match(err.stack ?? "", /proc\.test\.js/);
      return true;
    });
    assert.ok(Date.now() - started < 2000);
  },
);

test("waitForLine rejects as soon as the child exits without printing the line", BOUND, async (t) => {
  const child = registerCleanup(t, node(`console.error("boom"); process.exit(3);`, "crasher"));
  await assert.rejects(child.waitForLine("ready", 10_000), /crasher: exited \(code 3\)[^]*boom/);
  assert.deepEqual(await child.exited, { code: 3, signal: null });
  await assert.rejects(child.waitForLine("ready"), /exited/, "later waits fail at once too");
});

test("stop() sends SIGTERM, then SIGKILL to a child that ignores it", BOUND, async (t) => {
  const polite = registerCleanup(t, node(`console.log("up"); setInterval(() => {}, 1000);`));
  await polite.waitForLine("up");
  assert.equal((await polite.stop()).signal, "SIGTERM");

  const stubborn = registerCleanup(
    t,
    node(
      `process.on("SIGTERM", () => console.log("ignored")); console.log("up"); setInterval(() => {}, 1000);`,
    ),
  );
  await stubborn.waitForLine("up");
  const started = Date.now();
  const exit = await stubborn.stop(300);
  assert.equal(exit.signal, "SIGKILL");
  assert.ok(Date.now() - started < 3000);
  await stubborn.waitForLine("ignored").catch(() => undefined); // may or may not have flushed
});

test("a missing command reports the spawn error", BOUND, async (t) => {
  const child = registerCleanup(t, spawnChild("/nonexistent/flock-daemon", [], { name: "ghost" }));
  const exit = await child.exited;
  assert.ok(exit.error, "spawn error recorded");
  await assert.rejects(child.waitForLine("x"), /ghost: exited \(spawn failed/);
});

test("registerCleanup stops the child in the test's t.after", BOUND, async (t) => {
  let pid = -1;
  await t.test("subtest that spawns a child and leaves it running", async (inner) => {
    const child = registerCleanup(inner, node(`console.log("up"); setInterval(() => {}, 1000);`));
    pid = child.pid;
    await child.waitForLine("up");
  });
  await waitFor("child stopped by cleanup", () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  });
});

test("waitFor names what it waited for and is bounded", BOUND, async () => {
  assert.equal(await waitFor("a number", () => 42), 42);
  await assert.rejects(
    waitFor("something that never happens", () => false, { timeoutMs: 100 }),
    (err: Error) => {
      assert.equal(err.name, "PollTimeoutError");
      assert.match(err.message, /something that never happens/);
      assert.match(err.stack ?? "", /proc\.test\.js/);
      return true;
    },
  );
});

test("processGroup: stop() ends the child's own children too; stdout() is stdout alone", BOUND, async (t) => {
  const script = `
    const { spawn } = require("node:child_process");
    const g = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    console.error("to stderr");
    console.log("grandchild " + g.pid);
    setInterval(() => {}, 1000);`;
  const child = registerCleanup(
    t,
    spawnChild(process.execPath, ["-e", script], { name: "group", processGroup: true, stopGraceMs: 500 }),
  );
  const grandchild = Number((await child.waitForLine(/^grandchild (\d+)$/))[1]);
  await child.stop();
  assert.match(child.output(), /to stderr/);
  assert.equal(child.stdout(), `grandchild ${grandchild}\n`);
  await waitFor("the grandchild to be gone with its group", () => {
    try {
      process.kill(grandchild, 0);
      return false;
    } catch {
      return true;
    }
  });
});
