/** Public surface of the job report: the HTML/SVG training report and the live progress line. */
export { writeTrainingReport, REPORT_HTML_FILE, REPORT_SVG_FILE } from "./report.js";
export type {
  TrainingReportFiles,
  TrainingReportInput,
  TrainingResultSummary,
  StepSample,
  EvalSample,
  MembershipEvent,
  MembershipKind,
} from "./report.js";
export { createProgress } from "./progress.js";
export type { Progress, ProgressOptions, ProgressStream, ProgressUpdate } from "./progress.js";
