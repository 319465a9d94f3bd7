import type { ParamsSlice } from "../../messages/index.js";

/**
 * Assembles parameter versions from the reducers' slices. A version is complete when every
 * reducer's slice for it has arrived; older versions are dropped as newer ones complete.
 */
export class ParamAssembler {
  private readonly pending = new Map<number, Map<number, Float32Array>>();

  constructor(private readonly bounds: readonly number[]) {}

  /** Adds a slice; returns the version it completed, or undefined. */
  add(slice: Pick<ParamsSlice, "version" | "r" | "offset" | "data">, current: number): number | undefined {
    const r = slice.r;
    if (slice.version <= current || r >= this.bounds.length - 1) return undefined;
    const start = this.bounds[r];
    const end = this.bounds[r + 1];
    if (
      start === undefined ||
      end === undefined ||
      slice.offset !== start ||
      slice.data.length !== end - start
    )
      return undefined;
    let parts = this.pending.get(slice.version);
    if (!parts) this.pending.set(slice.version, (parts = new Map()));
    parts.set(r, slice.data);
    return parts.size === this.bounds.length - 1 ? slice.version : undefined;
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
