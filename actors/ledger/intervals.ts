/** Half-open position ranges `[start, end)`, kept sorted and disjoint. */
export type Range = [number, number];

/** Total length of ranges. */
export function lengthOf(ranges: readonly Range[]): number {
  let n = 0;
  for (const [a, b] of ranges) n += b - a;
  return n;
}

/** Adds a range, merging neighbours. */
export function addRange(ranges: Range[], r: Range): Range[] {
  if (r[1] <= r[0]) return ranges;
  const out: Range[] = [];
  let [a, b] = r;
  let placed = false;
  for (const [c, d] of ranges) {
    if (d < a) out.push([c, d]);
    else if (c > b) {
      if (!placed) {
        out.push([a, b]);
        placed = true;
      }
      out.push([c, d]);
    } else {
      a = Math.min(a, c);
      b = Math.max(b, d);
    }
  }
  if (!placed) out.push([a, b]);
  return out;
}

/** Removes a range; returns the remaining ranges and how much was actually removed. */
export function subtractRange(ranges: readonly Range[], r: Range): { rest: Range[]; removed: number } {
  const rest: Range[] = [];
  let removed = 0;
  for (const [c, d] of ranges) {
    if (d <= r[0] || c >= r[1]) {
      rest.push([c, d]);
      continue;
    }
    removed += Math.min(d, r[1]) - Math.max(c, r[0]);
    if (c < r[0]) rest.push([c, r[0]]);
    if (d > r[1]) rest.push([r[1], d]);
  }
  return { rest, removed };
}

/** Whether `r` lies wholly inside the ranges. */
export function containsRange(ranges: readonly Range[], r: Range): boolean {
  return ranges.some(([c, d]) => c <= r[0] && r[1] <= d);
}

/** Takes up to `count` positions from the front of the ranges. */
export function takeFront(ranges: readonly Range[], count: number): { taken: Range[]; rest: Range[] } {
  const taken: Range[] = [];
  const rest: Range[] = [];
  let left = count;
  for (const [c, d] of ranges) {
    if (left <= 0) {
      rest.push([c, d]);
      continue;
    }
    const k = Math.min(left, d - c);
    taken.push([c, c + k]);
    if (c + k < d) rest.push([c + k, d]);
    left -= k;
  }
  return { taken, rest };
}
