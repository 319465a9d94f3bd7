/**
 * A node's data checker (`NODE/data-check`): answers a coordinator's `data.check` with what this
 * node lacks of a job's `file://` data (see `compute/data-presence.ts`). One per node
 * incarnation; its {@link FileHasher} remembers digests, so a re-check of an unchanged file costs
 * one stat.
 * @module
 */
import type { Behavior } from "../../runtime/actor/index.js";
import type { Metrics } from "../../runtime/metrics.js";
import { FileHasher, presenceProblems } from "../compute/data-presence.js";
import { IgnoredMessages } from "../ignored.js";
import type { DataCheckCommand, DataChecked } from "./protocol.js";

/** Jobs whose last answer the checker remembers (for its log only). */
const MAX_JOBS_REMEMBERED = 64;

/**
 * The data checker's behaviour. A tell (not an ask) has no one to answer: ignored and counted,
 * as is anything it does not handle.
 */
export function dataCheckBehavior(
  hasher = new FileHasher(),
  metrics?: Metrics,
): Behavior<DataCheckCommand, undefined> {
  const ignored = new IgnoredMessages("data-check", metrics);
  // What each job was last told, so a coordinator re-asking every few seconds logs once per change.
  const told = new Map<string, string>();
  return {
    async receive(_state, msg, ctx) {
      if (!ctx.isAsk) return ignored.note(ctx.log, msg.type, "not-an-ask");
      const problems = await presenceProblems(msg.sources, hasher);
      const text = problems.join("\n");
      if (problems.length > 0 && told.get(msg.job) !== text)
        ctx.log.warn({ job: msg.job, problems }, "this node lacks the job's data");
      told.delete(msg.job);
      told.set(msg.job, text);
      if (told.size > MAX_JOBS_REMEMBERED) told.delete(told.keys().next().value ?? "");
      ctx.reply<DataChecked>({ type: "data.checked", problems });
    },
  };
}
