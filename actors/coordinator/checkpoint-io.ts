import type { Logger } from "../../runtime/log.js";
import type { BlobStore } from "../../runtime/store/types.js";
import { jobNames } from "../job/names.js";
import { CheckpointIntegrityError, sha256Hex } from "../reducer/checkpoint.js";
import {
  type CheckpointManifest,
  ManifestDecodeError,
  decodeManifest,
  encodeManifest,
  manifestSteps,
  prunable,
} from "./manifest.js";

/** No stored checkpoint of the job checks out (none written, or every one refused). */
export class NoCheckpointError extends Error {
  override name = "NoCheckpointError";
}

/**
 * The coordinator's checkpoint I/O on the object store: write a manifest, read the newest one
 * that checks out, and delete what retention no longer keeps. Decisions are the machine's and
 * `manifest.ts`'s; this only reads, writes and deletes.
 */
export class CheckpointStore {
  constructor(
    private readonly job: string,
    private readonly blobs: () => Promise<BlobStore>,
    private readonly log: () => Logger,
  ) {}

  /** Writes a manifest (its parts are all stored already). */
  async writeManifest(manifest: CheckpointManifest): Promise<void> {
    await (
      await this.blobs()
    ).put(jobNames.checkpointManifest(this.job, manifest.step), encodeManifest(manifest));
  }

  /**
   * The newest checkpoint of a step ≤ `maxStep` whose manifest decodes and whose every part is
   * present with the size and sha256 the manifest names; `refused` says why newer ones were
   * passed over. Throws {@link NoCheckpointError} when none checks out.
   */
  async readLatest(maxStep: number): Promise<{ manifest: CheckpointManifest; refused: string[] }> {
    const store = await this.blobs();
    const steps = manifestSteps(this.job, await store.list(jobNames.checkpointPrefix(this.job)));
    const refused: string[] = [];
    for (const step of steps.filter((s) => s <= maxStep)) {
      try {
        return { manifest: await this.check(store, step), refused };
      } catch (error) {
        if (!(error instanceof ManifestDecodeError || error instanceof CheckpointIntegrityError)) throw error;
        refused.push(error.message);
      }
    }
    throw new NoCheckpointError(
      `no complete checkpoint of job ${this.job} at or before step ${maxStep}${refused.length ? ` (refused: ${refused.join("; ")})` : ""}`,
    );
  }

  private async check(store: BlobStore, step: number): Promise<CheckpointManifest> {
    const name = jobNames.checkpointManifest(this.job, step);
    const blob = await store.get(name);
    if (!blob) throw new ManifestDecodeError(name, "gone");
    const manifest = decodeManifest(blob, name);
    if (manifest.job !== this.job || manifest.step !== step)
      throw new ManifestDecodeError(name, `describes ${manifest.job} step ${manifest.step}`);
    for (const part of manifest.parts) {
      const data = await store.get(part.name);
      if (!data) throw new CheckpointIntegrityError(part.name, "missing");
      if (data.length !== part.bytes)
        throw new CheckpointIntegrityError(
          part.name,
          `${data.length} bytes, the manifest says ${part.bytes}`,
        );
      if (sha256Hex(data) !== part.sha256)
        throw new CheckpointIntegrityError(part.name, "sha256 differs from the manifest's");
    }
    return manifest;
  }

  /** Deletes the job's checkpoint blobs retention no longer keeps; a failure is logged (the next prune retries it). */
  async prune(keep: readonly number[]): Promise<void> {
    const store = await this.blobs();
    const doomed = prunable(this.job, await store.list(jobNames.checkpointPrefix(this.job)), keep);
    const results = await Promise.allSettled(doomed.map((name) => store.delete(name)));
    const failed = doomed.filter((_, i) => results[i]?.status === "rejected");
    if (failed.length > 0)
      this.log().warn(
        { job: this.job, failed },
        "could not delete old checkpoint blobs; the next checkpoint retries",
      );
  }
}
