/** The training report: files written, the SVG well formed with its marks (Chromium: test/integration/report-chromium.test.ts). */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { XMLValidator } from "fast-xml-parser";
import { writeTrainingReport } from "../../tools/report/report.js";
import { countClass, realisticInput } from "../fixtures/report-input.js";

test("writes a standalone SVG with lines, points and membership markers", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "flock-report-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { htmlPath, svgPath } = await writeTrainingReport(realisticInput(), dir);
  assert.ok(existsSync(htmlPath) && existsSync(svgPath));
  const svg = await readFile(svgPath, "utf8");
  assert.equal(XMLValidator.validate(svg), true, "the SVG is well-formed XML");
  assert.match(svg, /^<\?xml[^>]*>\s*<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(countClass(svg, "mark-line") >= 3, "raw loss, smoothed loss and accuracy lines");
  assert.ok(countClass(svg, "mark-symbol") >= 1, "eval points");
  assert.ok(countClass(svg, "mark-rule") >= 1, "membership rules");
  assert.ok(countClass(svg, "mark-rect") >= 1, "recovery bands");
  assert.match(svg, /<path[^>]*d="M[\d.,-]+L/, "line paths have geometry");
  for (const label of ["death node-c", "failover coord-b", "join node-e", "join ×4", "mnist — job j-1a2b"]) {
    assert.ok(svg.includes(label), `the SVG shows "${label}"`);
  }
});
