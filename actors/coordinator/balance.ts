/**
 * Heterogeneous balancing (`balance: "throughput"`): each member's share of the global batch
 * follows its measured samples/s, so a slow node computes fewer samples instead of holding every
 * step up. Pure: the coordinator feeds it the answers it accepted and asks it for the shares
 * whenever it tells a step.
 *
 * The measurements come from the wire and are hostile: a member reports its own `n` and
 * `computeMs`. One lie must not hand it the batch, so a measurement is clamped (its `n` to the
 * share it was told, its time to at least half of what the coordinator itself observed), the rate
 * is smoothed, a share grows at most {@link MAX_GROWTH}× a step, and every member keeps a minimum
 * share (so a member that was slow once is still measured, and can win its share back).
 */

/** One member's smoothed throughput and the share it was last told. */
export interface BalanceEntry {
  node: string;
  /** EWMA of samples/s; 0 until the member's first measurement. */
  rate: number;
  /** Samples it was told in the last step told (0: never told under this state). */
  share: number;
}

/** What the coordinator keeps (and persists) for balancing: one entry per member, sorted by node. */
export type BalanceState = BalanceEntry[];

/** Weight of a new measurement in the EWMA. */
export const EWMA_ALPHA = 0.3;
/** Most a member's share may grow from one step told to the next (a lie pays off slowly). */
export const MAX_GROWTH = 1.5;
/** The smallest share, as a fraction of an equal share (at least one sample). */
export const MIN_SHARE_FRACTION = 0.1;
/** Bounds of one measurement in samples/s: beyond them it is absurd, not fast. */
export const MIN_RATE = 1e-3;
export const MAX_RATE = 1e7;
/**
 * A member's claimed compute time counts as at least this fraction of the time the coordinator saw
 * between telling the step and its answer: claiming 0.001 ms for a step it took 40 ms to answer
 * buys at most a factor of 1 / OBSERVED_FLOOR.
 */
export const OBSERVED_FLOOR = 0.5;

/** One accepted answer of a member, as the coordinator measured it. */
export interface Measurement {
  node: string;
  /** Samples it claims it computed. */
  n: number;
  /** Compute time it claims (ms). */
  computeMs: number;
  /** Time the coordinator saw from telling the step to this answer (ms), when known. */
  observedMs?: number;
}

/**
 * The state after one accepted answer: the member's rate moves toward `n / time`. An answer with
 * no samples or no positive finite time says nothing about throughput and is ignored.
 */
export function observe(state: BalanceState, x: Measurement): BalanceState {
  if (!(x.n > 0) || !Number.isFinite(x.n) || !(x.computeMs > 0) || !Number.isFinite(x.computeMs))
    return state;
  const entry = state.find((e) => e.node === x.node);
  // A member cannot claim more samples than it was told (the ledger checks the batch itself).
  const n = entry && entry.share > 0 ? Math.min(x.n, entry.share) : x.n;
  const seen =
    x.observedMs !== undefined && Number.isFinite(x.observedMs) ? x.observedMs * OBSERVED_FLOOR : 0;
  const ms = Math.max(x.computeMs, seen);
  const sample = Math.min(MAX_RATE, Math.max(MIN_RATE, n / (ms / 1000)));
  if (!entry) return sorted([...state, { node: x.node, rate: sample, share: 0 }]);
  const rate = entry.rate > 0 ? (1 - EWMA_ALPHA) * entry.rate + EWMA_ALPHA * sample : sample;
  return state.map((e) => (e === entry ? { ...e, rate } : e));
}

/**
 * The shares of the next step told: integers summing to `globalBatch`, proportional to the
 * members' rates within the growth bound and the minimum share, deterministic (ties go by node id).
 * Equal shares while no member is measured; a member not measured yet counts at the mean rate.
 * The returned state keeps exactly the members, with the shares told.
 */
export function balancedShares(
  members: readonly string[],
  globalBatch: number,
  state: BalanceState,
): { shares: Array<{ node: string; size: number }>; state: BalanceState } {
  const nodes = [...new Set(members)].sort((a, b) => a.localeCompare(b));
  const k = nodes.length;
  const byNode = new Map(state.map((e) => [e.node, e]));
  const measured = nodes.flatMap((n) => {
    const rate = byNode.get(n)?.rate ?? 0;
    return rate > 0 && Number.isFinite(rate) ? [rate] : [];
  });
  const sizes =
    k === 0 || globalBatch < k || measured.length === 0
      ? equalSizes(k, globalBatch)
      : proportionalSizes(nodes, globalBatch, byNode, measured.reduce((a, r) => a + r, 0) / measured.length);
  const shares = nodes.map((node, i) => ({ node, size: sizes[i] ?? 0 }));
  const next = shares.map(({ node, size }) => ({ node, rate: byNode.get(node)?.rate ?? 0, share: size }));
  return { shares, state: next };
}

/** `globalBatch` split evenly, the first members taking the remainder (as `batchShares` does). */
function equalSizes(k: number, globalBatch: number): number[] {
  const share = Math.floor(globalBatch / Math.max(1, k));
  const extra = globalBatch % Math.max(1, k);
  return Array.from({ length: k }, (_, i) => share + (i < extra ? 1 : 0));
}

function proportionalSizes(
  nodes: readonly string[],
  globalBatch: number,
  byNode: ReadonlyMap<string, BalanceEntry>,
  mean: number,
): number[] {
  const k = nodes.length;
  const rates = nodes.map((n) => {
    const r = byNode.get(n)?.rate ?? 0;
    return r > 0 && Number.isFinite(r) ? r : mean;
  });
  const lo = Math.max(1, Math.floor((MIN_SHARE_FRACTION * globalBatch) / k));
  const hi = growthCaps(nodes, globalBatch, byNode, lo);
  const x = waterFill(rates, globalBatch, lo, hi);
  return apportion(x, globalBatch, lo, hi);
}

/**
 * Each member's largest share: {@link MAX_GROWTH}× its last (at least one more sample), an equal
 * share for one never told. When members left, the caps may not reach the batch: they are then
 * scaled up together (a membership change, not a measurement, moves those samples).
 */
function growthCaps(
  nodes: readonly string[],
  globalBatch: number,
  byNode: ReadonlyMap<string, BalanceEntry>,
  lo: number,
): number[] {
  const equal = Math.ceil(globalBatch / nodes.length);
  let hi = nodes.map((n) => {
    const prev = byNode.get(n)?.share ?? 0;
    const cap = prev > 0 ? Math.max(Math.floor(prev * MAX_GROWTH), prev + 1) : equal;
    return Math.min(globalBatch, Math.max(lo, cap));
  });
  const sum = hi.reduce((a, h) => a + h, 0);
  if (sum < globalBatch) hi = hi.map((h) => Math.min(globalBatch, Math.ceil((h * globalBatch) / sum)));
  return hi;
}

/** Real shares `clamp(λ·rate, lo, hi)` summing to `total` (λ by bisection: the sum grows with λ). */
function waterFill(rates: readonly number[], total: number, lo: number, hi: readonly number[]): number[] {
  const at = (lambda: number) => rates.map((r, i) => Math.min(hi[i] ?? lo, Math.max(lo, lambda * r)));
  const sum = (xs: number[]) => xs.reduce((a, v) => a + v, 0);
  let low = 0;
  let high = Math.max(...rates.map((r, i) => (hi[i] ?? lo) / r));
  for (let i = 0; i < 100; i++) {
    const mid = (low + high) / 2;
    if (sum(at(mid)) < total) low = mid;
    else high = mid;
  }
  return at(high);
}

/**
 * Integers within [lo, hi] summing to `total`, closest to the real shares: floors first, then
 * one more sample to the largest remainders (or one less from the smallest), ties by position
 * (the members are sorted by node id), so equal inputs give equal shares everywhere.
 */
function apportion(x: readonly number[], total: number, lo: number, hi: readonly number[]): number[] {
  const s = x.map((v, i) => Math.min(hi[i] ?? lo, Math.max(lo, Math.floor(v))));
  let diff = total - s.reduce((a, v) => a + v, 0);
  for (let guard = 0; diff !== 0 && guard < 4 * total + x.length; guard++) {
    const up = diff > 0;
    let best = -1;
    for (let i = 0; i < s.length; i++) {
      const si = s[i] ?? 0;
      if (up ? si >= (hi[i] ?? lo) : si <= lo) continue;
      const rem = (x[i] ?? 0) - si;
      const b = best < 0 ? 0 : (x[best] ?? 0) - (s[best] ?? 0);
      if (best < 0 || (up ? rem > b : rem < b)) best = i;
    }
    if (best < 0) break;
    s[best] = (s[best] ?? 0) + (up ? 1 : -1);
    diff += up ? -1 : 1;
  }
  return s;
}

function sorted(state: BalanceState): BalanceState {
  return [...state].sort((a, b) => a.node.localeCompare(b.node));
}
