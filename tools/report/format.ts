/** Escaping and number formatting for the HTML report. */

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/**
 * JSON for a `<script type="application/json">` block: `<` is escaped so no value can close the
 * element, and U+2028/2029 so the text is also valid as a JavaScript literal.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** A number with thousands separators; non-finite values are shown as they are (NaN, ∞). */
export function formatInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : String(n);
}

/** A loss value with four significant digits. */
export function formatLoss(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Math.abs(n) >= 1e4 || (n !== 0 && Math.abs(n) < 1e-3) ? n.toExponential(3) : n.toPrecision(4);
}

/** A fraction in [0, 1] as a percentage with two decimals. */
export function formatPercent(n: number): string {
  return Number.isFinite(n) ? `${(n * 100).toFixed(2)} %` : String(n);
}

/** Seconds as `12.3 s`, `4 m 05 s` or `1 h 02 m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h} h ${String(m).padStart(2, "0")} m` : `${m} m ${String(s).padStart(2, "0")} s`;
}

/** Seconds since start as `+m:ss.s`, the clock used in the timeline table. */
export function formatOffset(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  const m = Math.floor(Math.max(0, seconds) / 60);
  const s = Math.max(0, seconds) - m * 60;
  return `+${m}:${s.toFixed(1).padStart(4, "0")}`;
}

/** An ISO time as `YYYY-MM-DD HH:MM:SS UTC`, or the input unchanged when it does not parse. */
export function formatTime(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");
}

/** Coarse outcome of a job status, for colouring: `ok`, `failed` or `other` (running, cancelled...). */
export function statusTone(status: string): "ok" | "failed" | "other" {
  if (/^(completed?|succeeded|success|done|ok|finished)$/i.test(status.trim())) return "ok";
  if (/fail|error|abort|crash|diverge/i.test(status)) return "failed";
  return "other";
}
