/**
 * Checkpoint manifests: the codec (round trip, refusal of bad input), the retention decision, and
 * the coordinator's checkpoint store on in-memory blobs (a manifest or part that fails its check
 * is refused and the next older complete checkpoint is used).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Packr } from "msgpackr";
import { silentLogger } from "../../runtime/log.js";
import { MemoryStores } from "../../runtime/store/index.js";
import { CheckpointStore, NoCheckpointError } from "../../actors/coordinator/checkpoint-io.js";
import {
  type CheckpointManifest,
  ManifestDecodeError,
  decodeManifest,
  encodeManifest,
  prunable,
  retain,
} from "../../actors/coordinator/manifest.js";
import { jobNames } from "../../actors/job/names.js";
import { ShardLedger } from "../../actors/ledger/ledger.js";
import { sha256Hex } from "../../actors/reducer/checkpoint.js";

function manifest(step: number, parts: Array<{ bytes: number; sha256: string }>): CheckpointManifest {
  return {
    format: 1,
    job: "j1",
    step,
    term: 3,
    writtenAt: 1,
    paramCount: 10,
    parts: parts.map((x, r) => ({
      r,
      name: jobNames.checkpoint("j1", step, r),
      offset: r * 5,
      length: 5,
      ...x,
    })),
    state: {
      epoch: 2,
      reducerGen: 0,
      ledger: ShardLedger.create(8, 2).snapshot(),
      rng: { seed: 1, dataEpoch: 0, orderSeed: 7, nextPosition: 0 },
      lastLoss: NaN,
      evals: [],
    },
  };
}

const part = { bytes: 3, sha256: "c".repeat(64) };

test("a manifest round-trips through the codec (NaN loss, ledger bytes)", () => {
  const m = manifest(5, [part, part]);
  const back = decodeManifest(encodeManifest(m), "m");
  assert.deepEqual(back.parts, m.parts);
  assert.ok(Number.isNaN(back.state.lastLoss));
  assert.deepEqual(back.state.ledger.counts, m.state.ledger.counts);
});

test("a manifest that is not msgpack, misses fields, or whose parts do not tile the parameters is refused", () => {
  const packr = new Packr({ useRecords: false, moreTypes: true });
  assert.throws(() => decodeManifest(Uint8Array.from([0xc1]), "x"), ManifestDecodeError);
  assert.throws(() => decodeManifest(packr.pack({ format: 1 }), "x"), /is refused/);
  const gap = manifest(5, [part, part]);
  gap.parts[1] = { ...gap.parts[1]!, offset: 6 };
  assert.throws(() => decodeManifest(encodeManifest(gap), "x"), /starts at 6, expected 5/);
  const short = manifest(5, [part]);
  assert.throws(() => decodeManifest(encodeManifest(short), "x"), /cover 5 of 10/);
  const foreign = manifest(5, [part, part]);
  foreign.parts[0] = { ...foreign.parts[0]!, name: "ckpt.other.5.r0" };
  assert.throws(() => decodeManifest(encodeManifest(foreign), "x"), /named ckpt.other.5.r0/);
  assert.throws(
    () => decodeManifest(encodeManifest(manifest(5, [{ bytes: 3, sha256: "XYZ" }, part])), "x"),
    /sha256/,
  );
});

test("retention: the last K complete checkpoints stay; older and incomplete ones go; newer partial ones and other jobs stay", () => {
  assert.deepEqual(retain([5, 10], 15, 2), [10, 15]);
  assert.deepEqual(retain([10], 10, 3), [10]);
  const names = [
    "ckpt.j1.5.r0",
    "ckpt.j1.5.r1",
    "ckpt.j1.5.manifest",
    "ckpt.j1.10.r0", // incomplete: a reducer never acknowledged
    "ckpt.j1.15.r0",
    "ckpt.j1.15.r1",
    "ckpt.j1.15.manifest",
    "ckpt.j1.20.r0", // being written
    "ckpt.j12.1.r0",
    "ckpt.j1.x.r0",
  ];
  assert.deepEqual(prunable("j1", names, [15]), [
    "ckpt.j1.5.r0",
    "ckpt.j1.5.r1",
    "ckpt.j1.5.manifest",
    "ckpt.j1.10.r0",
  ]);
  assert.deepEqual(prunable("j1", names, [5, 15]), ["ckpt.j1.10.r0"]);
  assert.deepEqual(prunable("j1", names, []), []);
});

test("the checkpoint store reads the newest checkpoint that checks out, refusing a corrupt part or manifest", async () => {
  const blobs = await new MemoryStores().blobs("checkpoints");
  const store = new CheckpointStore(
    "j1",
    async () => blobs,
    () => silentLogger(),
  );
  await assert.rejects(store.readLatest(100), NoCheckpointError);
  const write = async (step: number): Promise<CheckpointManifest> => {
    const parts = [];
    for (let r = 0; r < 2; r++) {
      const data = Uint8Array.from([step, r, 1]);
      await blobs.put(jobNames.checkpoint("j1", step, r), data);
      parts.push({ bytes: data.length, sha256: sha256Hex(data) });
    }
    const m = manifest(step, parts);
    await store.writeManifest(m);
    return m;
  };
  await write(5);
  await write(10);
  await write(15);
  assert.equal((await store.readLatest(100)).manifest.step, 15);
  assert.equal((await store.readLatest(12)).manifest.step, 10, "none newer than the job's step");
  await blobs.put(jobNames.checkpoint("j1", 15, 1), Uint8Array.from([0, 0, 0])); // overwritten since
  await blobs.put(jobNames.checkpointManifest("j1", 10), Uint8Array.from([1, 2, 3])); // corrupt
  const got = await store.readLatest(100);
  assert.equal(got.manifest.step, 5, "falls back to the previous complete checkpoint");
  assert.equal(got.refused.length, 2);
  assert.match(got.refused[0] ?? "", /ckpt.j1.15.r1 is refused: sha256/);
  assert.match(got.refused[1] ?? "", /ckpt.j1.10.manifest is refused/);
  await store.prune([15]);
  assert.deepEqual(await blobs.list("ckpt.j1."), ["ckpt.j1.15.manifest", "ckpt.j1.15.r0", "ckpt.j1.15.r1"]);
});
