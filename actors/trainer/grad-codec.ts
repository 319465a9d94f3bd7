/**
 * How a trainer puts its gradient on the wire: slice r for reducer r, as float32
 * (`compression: "none"`) or packed with error feedback (fp16, int8), and the bytes it sends.
 * @module
 */
import { ErrorFeedback, type Encoding } from "../compute/compress.js";
import type { JobSpec } from "../job/spec.js";
import type { Metrics } from "../../runtime/metrics.js";
import type { GradData } from "../reducer/protocol.js";
import type { ReducerMap } from "./protocol.js";

/** The counter of gradient bytes a trainer sends (label `encoding`). */
export const GRAD_BYTES_METRIC = "flock_trainer_grad_bytes_total";
const GRAD_BYTES_HELP = "Bytes of gradient slices a trainer sent to the reducers (payload only)";
/** Steps whose residual is kept for a redo: the step in flight and one behind (bounded staleness). */
const SNAPSHOTS = 3;

/** One reducer's slice of a step's gradient. */
export interface AddressedSlice {
  address: string;
  data: GradData;
}

/**
 * Encodes a trainer's gradients step by step. With a lossy encoding it keeps one residual over
 * the whole parameter vector (each reducer's slice is a view of it, so a change of reducer bounds
 * keeps it), and the residual as it was before each recent step's first attempt: a step that is
 * aborted and computed again starts from that residual, so the aborted attempt's left-out part is
 * neither lost nor counted twice. Counts the bytes it encodes in {@link GRAD_BYTES_METRIC}.
 */
export class GradEncoder {
  private residual: Float32Array | undefined;
  private readonly before = new Map<number, Float32Array>();

  /**
   * @param compression - the job spec's `compression`.
   * @param metrics - the node's metrics, when it has them.
   */
  constructor(
    readonly compression: JobSpec["compression"],
    private readonly metrics?: Metrics,
  ) {}

  /**
   * Slice r of `grad` for step `step`, for reducer r (`[bounds[r], bounds[r + 1])`, to the end
   * when a bound is missing, as `subarray` reads it).
   */
  encode(step: number, grad: Float32Array, reducers: ReducerMap): AddressedSlice[] {
    const b = reducers.bounds;
    const lossy: Encoding | undefined = this.compression === "none" ? undefined : this.compression;
    const residual = lossy ? this.residualFor(step, grad.length) : undefined;
    let bytes = 0;
    const out = reducers.addresses.map((address, r): AddressedSlice => {
      const g = grad.subarray(b[r], b[r + 1]);
      if (!lossy || !residual) {
        bytes += g.byteLength;
        return { address, data: g };
      }
      const packed = new ErrorFeedback(lossy, residual.subarray(b[r], b[r + 1])).encode(g);
      bytes += packed.length;
      return { address, data: { encoding: lossy, length: g.length, bytes: packed } };
    });
    this.metrics?.inc(GRAD_BYTES_METRIC, { encoding: this.compression }, bytes, GRAD_BYTES_HELP);
    return out;
  }

  /** The residual (for tests: what the next step will add). */
  pending(): Float32Array | undefined {
    return this.residual;
  }

  /**
   * The residual to encode step `step` with: the one kept from before its first attempt when it
   * is computed again, else the current one, kept for a redo. Steps are computed in order, so a
   * kept step after `step` belongs to attempts that were aborted with it (or rolled back by a
   * restore): its snapshot goes.
   */
  private residualFor(step: number, length: number): Float32Array {
    if (this.residual?.length !== length) {
      this.residual = new Float32Array(length);
      this.before.clear();
    }
    for (const s of this.before.keys()) if (s > step) this.before.delete(s);
    const kept = this.before.get(step);
    if (kept) this.residual.set(kept);
    else this.before.set(step, this.residual.slice());
    const steps = [...this.before.keys()].sort((a, b) => a - b);
    for (const s of steps.slice(0, Math.max(0, steps.length - SNAPSHOTS))) this.before.delete(s);
    return this.residual;
  }
}
