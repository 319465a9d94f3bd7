/**
 * A client that never hears `job.finished` (its transport loses it) still returns the job's
 * result: it reads the job's durable state record after the topic falls silent. On the embedded
 * default (in-process bus, in-memory stores).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { resolveJobSpec, runJob, type ClusterHandle } from "../../actors/api.js";
import { EmbeddedCluster } from "../../actors/embedded.js";
import { jobNames } from "../../actors/job/names.js";
import type { JobEvent } from "../../messages/index.js";
import { ActorSystem } from "../../runtime/actor/index.js";
import { scaleTimeout } from "../helpers/index.js";
import { LossyTransport, dropsTopicMessages } from "../helpers/lossy-transport.js";

test(
  "runJob returns the result when every job.finished is lost on the way to the client",
  { timeout: scaleTimeout(120_000) },
  async (t) => {
    const cluster = await EmbeddedCluster.start({ nodes: 1 });
    t.after(() => cluster.close());
    const spec = resolveJobSpec("mnist", {
      epochs: 1,
      minWorkers: 1,
      maxWorkers: 1,
      globalBatch: 256,
      seed: 4,
    });
    const lossy = new LossyTransport(
      cluster.bus.connect(),
      dropsTopicMessages(jobNames.eventsTopic(spec.id!), "job.finished"),
    );
    const client = await ActorSystem.start({ nodeId: "lossy-client", transport: lossy, ownsTransport: true });
    t.after(() => client.stop());
    const handle: ClusterHandle = { ...cluster.handle, client, close: () => client.stop() };
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
