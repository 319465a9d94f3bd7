/**
 * The store contract (test/contract/store.ts) on JetStream KV on a real nats-server, and what only
 * the JetStream provider does (cluster scoping, replicas).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { JetStreamStores } from "../../runtime/store/index.js";
import { storeContract } from "../contract/store.js";
import { sharedJetStream } from "../helpers/index.js";
import { StorageType } from "nats";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined => (b ? new TextDecoder().decode(b) : undefined);

const nc = sharedJetStream();
storeContract("jetstream", () => ({
  stores: new JetStreamStores(nc(), { cluster: "storetest" }),
  advance: (ms) => sleep(ms),
}));

describe("JetStreamStores specifics", () => {
  test("buckets are scoped by cluster and use one replica on a single server", async () => {
    const blue = new JetStreamStores(nc(), { cluster: "blue" });
    const green = new JetStreamStores(nc(), { cluster: "green" });
    await (await blue.kv("shared")).put("k", enc("blue"));
    assert.equal(await (await green.kv("shared")).get("k"), undefined);
    assert.equal(
      dec((await (await new JetStreamStores(nc(), { cluster: "blue" }).kv("shared")).get("k"))?.value),
      "blue",
    );
    assert.equal(blue.replicaCount, 1);
    assert.equal(blue.bucketName("shared"), "flock_blue_shared");
    const jsm = await nc().jetstreamManager();
    const info = await jsm.streams.info("KV_flock_blue_shared");
    assert.equal(info.config.num_replicas, 1);
    assert.equal(info.config.max_msgs_per_subject, 1);
  });

  test("on a single server every bucket lives on disk, a TTL bucket too (it must survive a restart)", async () => {
    const stores = new JetStreamStores(nc(), { cluster: "storage" });
    await (await stores.kv("ephemeral", { ttlMs: 3000 })).put("k", enc("v"));
    await (await stores.kv("durable")).put("k", enc("v"));
    const jsm = await nc().jetstreamManager();
    const ephemeral = await jsm.streams.info("KV_flock_storage_ephemeral");
    assert.equal(ephemeral.config.storage, StorageType.File);
    assert.equal(ephemeral.config.max_age, 3000 * 1_000_000);
    assert.equal((await jsm.streams.info("KV_flock_storage_durable")).config.storage, StorageType.File);
  });
});
