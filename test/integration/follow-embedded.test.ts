/**
 * A client that never hears `job.finished` (its transport loses it) still returns the job's
 * result: it reads the job's durable state record after the topic falls silent. On the embedded
 * default (in-process bus, in-memory stores).
 */
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { resolveJobSpec, runJob, type ClusterHandle } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import { JOB_STATE_BUCKET, jobNames } from "../../actors/job/names.js";
import type { JobSpec } from "../../actors/job/spec.js";
import { decodeJob } from "../../actors/coordinator/codec.js";
import type { JobEvent } from "../../messages/index.js";
import { ActorSystem } from "../../runtime/actor/index.js";
import { scaleTimeout, waitFor } from "../helpers/index.js";
import { LossyTransport, dropsTopicMessages } from "../helpers/lossy-transport.js";

/**
 * A one-node embedded cluster, a one-epoch MNIST spec, and a client whose transport loses every
 * `job.finished` of that job (all stopped after the test).
 */
async function lossyClient(
  t: TestContext,
  seed: number,
): Promise<{ cluster: EmbeddedCluster; spec: JobSpec; lossy: LossyTransport; handle: ClusterHandle }> {
  const cluster = await EmbeddedCluster.start({ nodes: 1 });
  t.after(() => cluster.close());
  const spec = resolveJobSpec("mnist", { epochs: 1, minWorkers: 1, maxWorkers: 1, globalBatch: 256, seed });
  const lossy = new LossyTransport(
    cluster.bus.connect(),
    dropsTopicMessages(jobNames.eventsTopic(spec.id!), "job.finished"),
  );
  const client = await ActorSystem.start({ nodeId: "lossy-client", transport: lossy, ownsTransport: true });
  t.after(() => client.stop());
  return { cluster, spec, lossy, handle: { ...cluster.handle, client, close: () => client.stop() } };
}

test(
  "runJob returns the result when every job.finished is lost on the way to the client",
  { timeout: scaleTimeout(120_000) },
  async (t) => {
    const { spec, lossy, handle } = await lossyClient(t, 4);
    const events: JobEvent[] = [];
    const result = await runJob(handle, spec, { onEvent: (e) => events.push(e) });
    assert.ok(lossy.dropped >= 1, "the job.finished was published and lost");
    assert.equal(
      events.some((e) => e.type === "job.finished"),
      false,
      "the client never heard the end",
    );
    assert.ok(
      events.some((e) => e.type === "job.step"),
      "it heard the job's steps (the loss is of the end only)",
    );
    assert.equal(result.status, "completed");
    assert.equal(result.job, spec.id);
    assert.deepEqual(result.samplesPerEpoch, [8000]);
    assert.ok(result.ledgerAudit.exact);
  },
);

test(
  "after a reconnect the follower reads the record at once: an end lost meanwhile is found without waiting for silence",
  { timeout: scaleTimeout(120_000) },
  async (t) => {
    const { cluster, spec, lossy, handle } = await lossyClient(t, 5);
    // Silence and periodic reads pushed out of the test's reach: only the reconnect can end it.
    const hour = 3_600_000;
    let returned = 0;
    const running = runJob(handle, spec, {
      timings: { silenceMs: hour, pollMs: hour, pollAnywayMs: hour },
    }).then((r) => ((returned = Date.now()), r));
    const kv = await cluster.stores.kv(JOB_STATE_BUCKET);
    await waitFor(
      "the job's record says finished",
      async () => {
        const entry = await kv.get(spec.id!);
        return entry !== undefined && decodeJob(entry.value).state === "finished";
      },
      { timeoutMs: scaleTimeout(90_000), intervalMs: 200 },
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(returned, 0, "without the reconnect the follower still waits");
    assert.ok(lossy.dropped >= 1);
    const reconnectedAt = Date.now();
    lossy.announce({ kind: "reconnected", server: "test" });
    const result = await running;
    assert.equal(result.status, "completed");
    assert.ok(returned - reconnectedAt < 2000, `returned ${returned - reconnectedAt} ms after the reconnect`);
  },
);
