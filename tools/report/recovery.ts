/**
 * Recovery measured from the fault, where the harness that caused it knows when that was (the demo,
 * chaos, the bench). A coordinator's `recoverySeconds` starts when it recorded the loss, so it leaves
 * out the detection (heartbeats missed until the failure deadline): a kill detected after 1.7 s and
 * recovered 0.09 s later is a 1.79 s recovery, not a 0.09 s one. Pure functions over wall-clock ms.
 * @module
 */

/** A membership record as the coordinator wrote it: `at` is when it recorded the change (wall ms). */
export interface LossRecord {
  kind: string;
  node: string;
  at?: number;
  /** From the record to the next committed step (the coordinator's own figure). */
  recoverySeconds?: number;
}

/** A fault the harness caused: the node it hit, and when (wall ms). */
export interface KillTime {
  node: string;
  at: number;
}

/** One kill, from the fault to the next commit. */
export interface KillRecovery {
  node: string;
  /** The kill → the coordinator's record of the loss (undefined: no loss recorded). */
  detectionSeconds?: number;
  /** The record → the next committed step (the coordinator's `recoverySeconds`). */
  afterDetectionSeconds?: number;
  /** The kill → the next committed step: detection plus the rest. */
  killToCommitSeconds?: number;
}

const LOSSES = new Set(["death", "leave"]);

/**
 * The record a kill caused: the first death or leave of the killed node recorded at or after the
 * kill (and before `until`, the next fault), else the first takeover (`failover`, recorded under the
 * standby's node when the killed node held the coordinator but no trainer).
 */
export function lossOfKill<R extends LossRecord>(
  kill: KillTime,
  records: readonly R[],
  until = Infinity,
): R | undefined {
  const inWindow = records.filter((r) => r.at !== undefined && r.at >= kill.at && r.at < until);
  return (
    inWindow.find((r) => LOSSES.has(r.kind) && r.node === kill.node) ??
    inWindow.find((r) => r.kind === "failover")
  );
}

/** Detection and kill → commit of one kill, from the records of its job. */
export function recoveryFromKill(
  kill: KillTime,
  records: readonly LossRecord[],
  until = Infinity,
): KillRecovery {
  const rec = lossOfKill(kill, records, until);
  if (rec?.at === undefined) return { node: kill.node };
  const detectionSeconds = (rec.at - kill.at) / 1000;
  if (rec.recoverySeconds === undefined) return { node: kill.node, detectionSeconds };
  return {
    node: kill.node,
    detectionSeconds,
    afterDetectionSeconds: rec.recoverySeconds,
    killToCommitSeconds: detectionSeconds + rec.recoverySeconds,
  };
}

/** `1.79 s from the kill to the next commit (detected after 1.70 s, then 0.09 s)`, or what is known of it. */
export function describeKillRecovery(r: KillRecovery): string {
  const s = (x: number) => `${x.toFixed(2)} s`;
  if (r.detectionSeconds === undefined) return `${r.node}: no loss recorded`;
  if (r.killToCommitSeconds === undefined || r.afterDetectionSeconds === undefined)
    return `${r.node}: detected after ${s(r.detectionSeconds)}, no commit since`;
  return `${s(r.killToCommitSeconds)} from the kill of ${r.node} to the next commit (detected after ${s(r.detectionSeconds)}, then ${s(r.afterDetectionSeconds)} to commit)`;
}

/**
 * The report's membership events with the kill → commit figures on the records the kills caused, so
 * the report shows the recovery from the fault where the harness knows when it was.
 */
export function withKillTimes<E extends LossRecord>(
  events: readonly E[],
  kills: readonly KillTime[],
): Array<E & { detectionSeconds?: number; killToCommitSeconds?: number }> {
  const out: Array<E & { detectionSeconds?: number; killToCommitSeconds?: number }> = events.map((e) => ({
    ...e,
  }));
  kills.forEach((kill, i) => {
    const rec = lossOfKill(kill, out, kills[i + 1]?.at);
    const r = recoveryFromKill(kill, out, kills[i + 1]?.at);
    if (!rec || r.detectionSeconds === undefined) return;
    rec.detectionSeconds = r.detectionSeconds;
    if (r.killToCommitSeconds !== undefined) rec.killToCommitSeconds = r.killToCommitSeconds;
  });
  return out;
}
