import type { ParamsSlice } from "../../messages/index.js";

/**
 * Versions ahead of the one held that the assembler keeps slices for: the version in flight
 * (current + 1) and the one after it, which can start arriving before the last slice of the first
 * (slices come from several reducers, in no order between them). An honest reducer publishes no
 * further ahead: version v + 2 needs a commit of v + 2, which needs this job's trainers to hold v + 1.
 */
export const VERSIONS_AHEAD = 2;

/** Why a slice was not used: a version not wanted, or a slice that does not fit the layout. */
export type SliceRefusal = "future-version" | "bad-slice";

type SliceIn = Pick<ParamsSlice, "version" | "r" | "offset" | "data">;

/**
 * Assembles parameter versions from the reducers' slices. A version is complete when every
 * reducer's slice for it has arrived; older versions are dropped as newer ones complete. Only
 * versions within {@link VERSIONS_AHEAD} of the one held are kept, so a peer cannot make it hold
 * more than two partial versions.
 */
export class ParamAssembler {
  private readonly pending = new Map<number, Map<number, Float32Array>>();

  constructor(private readonly bounds: readonly number[]) {}

  /** Partial versions held (for tests and metrics). */
  get versions(): number[] {
    return [...this.pending.keys()];
  }

  /**
   * Adds a slice; returns the version it completed, or undefined. A slice of a version already
   * held is not used and not refused (reducers re-publish after a takeover); others not used say why.
   */
  add(slice: SliceIn, current: number): { completed?: number; refused?: SliceRefusal } {
    if (slice.version <= current) return {};
    if (slice.version > current + VERSIONS_AHEAD) return { refused: "future-version" };
    const r = slice.r;
    const start = this.bounds[r];
    const end = this.bounds[r + 1];
    if (
      start === undefined ||
      end === undefined ||
      slice.offset !== start ||
      slice.data.length !== end - start
    )
      return { refused: "bad-slice" };
    let parts = this.pending.get(slice.version);
    if (!parts) this.pending.set(slice.version, (parts = new Map()));
    parts.set(r, slice.data);
    return parts.size === this.bounds.length - 1 ? { completed: slice.version } : {};
  }

  /** Writes a complete version into `params` and forgets it and every older one. */
  apply(version: number, params: Float32Array): void {
    const parts = this.pending.get(version);
    if (!parts) throw new Error(`version ${version} is not assembled`);
    for (const [r, data] of parts) params.set(data, this.bounds[r] ?? 0);
    for (const v of [...this.pending.keys()]) if (v <= version) this.pending.delete(v);
  }

  /** Drops partial versions above `version` (a step that is being redone). */
  dropAbove(version: number): void {
    for (const v of [...this.pending.keys()]) if (v > version) this.pending.delete(v);
  }
}
