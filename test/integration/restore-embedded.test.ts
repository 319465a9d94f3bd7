/**
 * Restore from a checkpoint on the embedded default (in-process bus, in-memory stores, trainers in
 * worker threads): every node holding a trainer dies at once mid-epoch, so no live process holds
 * the parameters. The coordinator (on a node whose only slot is taken, so it never hosts a
 * trainer) restores every reducer from the latest complete checkpoint, rolls the ledger back, and
 * the job completes once the nodes return: every sample once, bit-identical replicas, and at most
 * `checkpointEvery` steps lost.
 *
 * All nodes dying at once (the coordinator's too) needs a daemon that respawns the coordinator of
 * an orphaned job, which another part of issue 14 adds; the machine's path for that case (a
 * takeover that finds no trainer) is covered in test/unit/coordinator-restore.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveJobSpec, runJob } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import { scaleTimeout } from "../helpers/index.js";

const CHECKPOINT_EVERY = 5;

test(
  "every trainer's node dies at once: the job restores from the checkpoint and completes exactly once",
  { timeout: scaleTimeout(180_000) },
  async (t) => {
    const cluster = await EmbeddedCluster.start({ nodes: 3 });
    t.after(() => cluster.close());
    // node-1 hosts the coordinator (the first node) and no trainer: its one slot is taken.
    assert.ok(cluster.nodes.get("node-1")?.slots.reserve("test"), "node-1's slot is free to take");
    let killedAt = 0;
    const result = await runJob(
      cluster.handle,
      resolveJobSpec("mnist", {
        epochs: 1,
        minWorkers: 2,
        maxWorkers: 2,
        seed: 5,
        checkpointEvery: CHECKPOINT_EVERY,
        keepCheckpoints: 2,
      }),
      {
        onEvent: (e) => {
          if (e.type !== "job.step" || e.step !== 13 || killedAt) return;
          killedAt = e.step;
          void Promise.all([cluster.kill("node-2"), cluster.kill("node-3")]).then(() =>
            setTimeout(() => {
              void cluster.startNode("node-2");
              void cluster.startNode("node-3");
            }, 3_000),
          );
        },
      },
    );
    assert.ok(killedAt > 0, "the nodes were killed mid-epoch");
    assert.equal(result.status, "completed");
    assert.deepEqual(result.samplesPerEpoch, [8000]);
    assert.ok(result.ledgerAudit.exact);
    assert.equal(result.replicasConsistent, true);
    assert.ok(
      result.membership.some(
        (m) => m.kind === "failover" && /restored from the checkpoint/.test(m.detail ?? ""),
      ),
      "the restore is recorded",
    );
    const stepsLost = result.stepsLost ?? -1;
    assert.ok(stepsLost >= 1 && stepsLost <= CHECKPOINT_EVERY, `stepsLost ${stepsLost} ≤ checkpointEvery`);
    const blobs = await cluster.stores.blobs("checkpoints");
    const manifests = (await blobs.list(`ckpt.${result.job}.`)).filter((n) => n.endsWith(".manifest"));
    assert.ok(
      manifests.length <= 2,
      `retention keeps at most keepCheckpoints manifests: ${manifests.join(", ")}`,
    );
  },
);
