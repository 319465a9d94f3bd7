import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import {
  ActorExistsError,
  ActorNotFoundError,
  RemoteActorError,
  type Behavior,
} from "../../runtime/actor/index.js";
import { testSystem } from "../helpers/actors.js";

// A kind's factory may reserve a slot or start a worker thread: a spawn request the node refuses
// must be refused before the factory runs, or what it started is leaked.

const Get = z.strictObject({ type: z.literal("k.get") });
const Start = z.strictObject({ type: z.literal("k.start"), start: z.number() });
type Get = z.infer<typeof Get>;
type Start = z.infer<typeof Start>;

async function kindNode(t: Parameters<typeof testSystem>[0]) {
  const { sys } = await testSystem(t, Get, Start);
  const created: number[] = [];
  sys.registerKind("k", {
    args: z.strictObject({ start: z.number().int() }),
    // `start` is typed as the schema's output: no cast on the way in or out.
    create: ({ start }): Behavior<Get, number> => {
      created.push(start);
      return {
        init: () => start,
        receive: (n, _msg, ctx) => ctx.reply<Start>({ type: "k.start", start: n }),
      };
    },
  });
  return { sys, created };
}

test("a remote spawn onto a live actor's name is refused before the kind's factory runs", async (t) => {
  const { sys, created } = await kindNode(t);
  const ref = await sys.spawnRemote<Get>("n1", "k", "one", { start: 7 }, { timeoutMs: 2000 });
  assert.equal((await ref.ask<Start>({ type: "k.get" }, { timeoutMs: 2000 })).start, 7);
  await assert.rejects(
    sys.spawnRemote("n1", "k", "one", { start: 8 }, { timeoutMs: 2000 }),
    ActorExistsError,
  );
  assert.deepEqual(created, [7], "the refused spawn created nothing");
});

test("bad arguments, a bad name, a missing parent or an unknown kind create nothing either", async (t) => {
  const { sys, created } = await kindNode(t);
  const o = { timeoutMs: 2000 };
  await assert.rejects(
    sys.spawnRemote("n1", "k", "two", { start: "x" }, o),
    (e: unknown) => e instanceof RemoteActorError && e.code === "bad-input",
  );
  await assert.rejects(
    sys.spawnRemote("n1", "k", "bad name", { start: 1 }, o),
    (e: unknown) => e instanceof RemoteActorError && e.code === "spawn-failed",
  );
  await assert.rejects(sys.spawnRemote("n1", "k", "nobody/child", { start: 1 }, o), ActorNotFoundError);
  await assert.rejects(
    sys.spawnRemote("n1", "nope", "three", {}, o),
    (e: unknown) => e instanceof RemoteActorError && e.code === "unknown-kind",
  );
  assert.deepEqual(created, []);
});

test("a child spawned remotely under a live parent gets the parent's path", async (t) => {
  const { sys, created } = await kindNode(t);
  await sys.spawnRemote("n1", "k", "p", { start: 1 }, { timeoutMs: 2000 });
  const child = await sys.spawnRemote<Get>("n1", "k", "p/c", { start: 2 }, { timeoutMs: 2000 });
  assert.equal(child.address, "n1/p/c");
  await assert.rejects(
    sys.spawnRemote("n1", "k", "p/c", { start: 3 }, { timeoutMs: 2000 }),
    ActorExistsError,
  );
  assert.deepEqual(created, [1, 2]);
});
