/** Rows under a header, in columns padded to their widths; `empty` under the header when there are no rows. */
export function table(header: string[], rows: string[][], empty: string): string[] {
  if (rows.length === 0) return [header.join("  "), empty];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const fmt = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}
