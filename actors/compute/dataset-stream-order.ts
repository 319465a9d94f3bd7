/**
 * A trainer's view of its job's sample order: which training samples the ledger positions of a
 * batch are, and — for a streamed dataset (`stream: true`) — making sure the shards they fall
 * in are in the node's cache before the worker gathers the batch, with the shards of the
 * positions right after the batch fetched meanwhile (a loader's next batch usually continues its
 * lease). The order of an epoch is `seededPermutation(trainSize, seed)` for a dataset held whole,
 * and `shardedOrder(shard sizes, seed)` for a streamed one: consecutive positions stay in one
 * shard, and it depends only on the shard sizes and the seed, never on the number of trainers.
 * @module
 */
import type { DatasetSpec } from "./dataset-spec.js";
import { ensureShards, requireProfile, type DataAccess, type StoredSources } from "./dataset-store-cache.js";
import { shardsForIndices, streamLayout, streamOrder, type StreamLayout } from "./dataset-stream-layout.js";
import { seededPermutation } from "./prng.js";

/** A batch's place in the order: its epoch and ledger positions `[start, end)`. */
export interface Positions {
  epoch: number;
  start: number;
  end: number;
}

/** The sample order of one job on one trainer (see the module doc). */
export class SampleOrder {
  private layout: StreamLayout | undefined;
  private cached: { epoch: number; order: Int32Array } | undefined;
  /** The prefetch in flight; never rejects (a failed prefetch is fetched again by the next prepare). */
  private prefetching: Promise<unknown> = Promise.resolve();

  /**
   * @param spec - the job's dataset.
   * @param seedOf - the order seed of an epoch (the job's `epochSeed(seed, epoch)`).
   * @param access - the node's stored datasets (where a streamed batch's shards come from).
   */
  constructor(
    private readonly spec: DatasetSpec,
    private readonly seedOf: (epoch: number) => number,
    private readonly access?: DataAccess,
  ) {}

  /** Adopts the manifests the trainer read (`fetchStoredSources`); lays out a streamed dataset. */
  adopt(stored: StoredSources | undefined): void {
    const spec = this.spec;
    if (typeof spec === "string" || spec.format === "images" || !spec.stream || !stored) return;
    const manifests = Object.fromEntries(Object.entries(stored).map(([u, s]) => [u, s.manifest]));
    this.layout = streamLayout(spec, manifests, requireProfile(spec).splitSeed);
  }

  /** Whether batches read shards on demand (a streamed dataset, laid out). */
  get streamed(): boolean {
    return this.layout !== undefined;
  }

  /** The training samples at positions `[start, end)` of an epoch's order over `size` samples. */
  indices(at: Positions, size: number): number[] {
    return Array.from(this.order(at.epoch, size).subarray(at.start, at.end));
  }

  /**
   * For a streamed dataset: caches the shards `indices` fall in (waiting for a prefetch in
   * flight first, so no shard is fetched twice), then starts fetching those of the positions
   * after `at`. A no-op for a dataset held whole. Returns the shards fetched now.
   */
  async prepare(at: Positions, indices: readonly number[], size: number): Promise<number> {
    const layout = this.layout;
    if (!layout) return 0;
    await this.prefetching;
    const fetched = await ensureShards(this.access, shardsForIndices(layout.train, indices));
    const next = { epoch: at.epoch, start: at.end, end: Math.min(size, at.end + (at.end - at.start)) };
    if (next.end > next.start)
      this.prefetching = ensureShards(
        this.access,
        shardsForIndices(layout.train, this.indices(next, size)),
      ).catch(() => undefined);
    return fetched;
  }

  private order(epoch: number, size: number): Int32Array {
    if (this.cached?.epoch !== epoch) {
      const seed = this.seedOf(epoch);
      const order = this.layout ? streamOrder(this.layout, seed) : seededPermutation(size, seed);
      this.cached = { epoch, order };
    }
    return this.cached.order;
  }
}
