/**
 * Writes the training report of a job: a self-contained HTML page and the loss/accuracy chart
 * as a standalone SVG.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { lossAccuracySpec, renderCharts, renderSvg } from "./charts.js";
import { renderHtml } from "./html.js";
import type { TrainingReportInput } from "./types.js";

export type {
  EvalSample,
  MembershipEvent,
  MembershipKind,
  StepSample,
  TrainingReportInput,
  TrainingResultSummary,
} from "./types.js";

/** File names written into the report directory. */
export const REPORT_HTML_FILE = "report.html";
export const REPORT_SVG_FILE = "loss-accuracy.svg";

/** Paths of the files {@link writeTrainingReport} wrote. */
export interface TrainingReportFiles {
  htmlPath: string;
  svgPath: string;
}

/** Writes `path` through a temporary sibling and a rename, so a reader never sees half a file. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, text, "utf8");
  await rename(tmp, path);
}

/**
 * Renders the report of one job into `outDir` (created if missing): `report.html`, which loads
 * nothing and shows its charts without JavaScript, and `loss-accuracy.svg`. Empty series (a job
 * that failed before its first step) give empty, labelled charts rather than an error.
 */
export async function writeTrainingReport(
  input: TrainingReportInput,
  outDir: string,
): Promise<TrainingReportFiles> {
  const [charts, standalone] = await Promise.all([
    renderCharts(input),
    renderSvg(lossAccuracySpec(input, `${input.title} — loss and accuracy`)),
  ]);
  await mkdir(outDir, { recursive: true });
  const htmlPath = join(outDir, REPORT_HTML_FILE);
  const svgPath = join(outDir, REPORT_SVG_FILE);
  await writeAtomically(svgPath, `<?xml version="1.0" encoding="UTF-8"?>\n${standalone}\n`);
  await writeAtomically(htmlPath, renderHtml(input, charts, new Date()));
  return { htmlPath, svgPath };
}
