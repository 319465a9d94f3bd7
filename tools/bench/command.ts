import type { Command } from "commander";
import { formatTable, writeMarkdown } from "./report.js";
import { FULL_PLAN, QUICK_PLAN, runBench } from "./run.js";

interface BenchFlags {
  json?: boolean;
  quick?: boolean;
  md?: string | false;
}

/**
 * Registers `flock bench [--json] [--quick] [--md FILE | --no-md]`: starts its own nats-server and
 * daemons, measures flock against raw NATS and plain tfjs, prints a table (with `--json`, the last
 * line of stdout is one JSON object), and, for a full run, rewrites the results block of
 * BENCHMARKS.md.
 */
export function registerBenchCommand(program: Command): void {
  program
    .command("bench")
    .description("Measure flock against raw NATS and plain tfjs (starts its own nats-server and daemons)")
    .option("--json", "Print one JSON object as the last line of stdout")
    .option("--quick", "A smaller run (a few minutes): every figure measured once, one epoch per job")
    .option(
      "--md <file>",
      "Write the results block of this markdown file (default for a full run: BENCHMARKS.md)",
    )
    .option("--no-md", "Write no markdown file")
    .action(async (flags: BenchFlags) => {
      const say = (line: string) => process.stderr.write(`bench: ${line}\n`);
      const report = await runBench(flags.quick ? QUICK_PLAN : FULL_PLAN, Boolean(flags.quick), say);
      const md = flags.md === false ? undefined : (flags.md ?? (flags.quick ? undefined : "BENCHMARKS.md"));
      if (md) {
        writeMarkdown(md, report);
        say(`wrote ${md}`);
      }
      if (flags.json) process.stdout.write(`${formatTable(report)}\n${JSON.stringify(report)}\n`);
      else process.stdout.write(`${formatTable(report)}\n`);
    });
}
