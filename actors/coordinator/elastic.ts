import type { MembershipEvent, NodeInfo } from "../../runtime/cluster/types.js";
import { jobNames } from "../job/names.js";
import type { Prepared } from "../trainer/protocol.js";
import { type Core, job, nodeOf } from "./model.js";
import { trainable } from "./placement.js";
import { pendRecovery, record } from "./records.js";
import { abortAndRedo, recoverReducers } from "./recovery.js";
import { commit, startStep } from "./step.js";
import type { Member } from "./state.js";

/** A node died, left, joined or came back: resize at the step boundary, recover reducers, or admit it. */
export function onMembership(m: Core, event: MembershipEvent): void {
  const name = m.s.phase.name;
  if (!m.s.p || name === "campaigning" || name === "done") return;
  const node = event.node.node;
  if (event.kind === "joined" || event.kind === "alive") return maybeJoin(m, node);
  if (event.kind !== "dead" && event.kind !== "left") return;
  nodeLost(m, node, event.kind, `${event.kind} (incarnation ${event.node.inc})`);
}

/**
 * Members whose trainer cannot be alive: their node runs another incarnation than the one the
 * trainer was placed on (it restarted; its actors died with the old one), or — with
 * `absentIsGone`, at a takeover — their node is not among the live ones at all. On a tick an
 * absent node is only suspect (a slow link): the membership's dead event, not this, removes it.
 */
export function staleMembers(
  members: readonly Member[],
  alive: readonly NodeInfo[],
  absentIsGone: boolean,
): Array<{ member: Member; detail: string }> {
  return members.flatMap((member) => {
    const now = alive.find((n) => n.node === member.node);
    if (!now) return absentIsGone ? [{ member, detail: "not alive" }] : [];
    if (member.inc !== undefined && now.inc !== member.inc)
      return [{ member, detail: `incarnation ${member.inc} replaced by ${now.inc}` }];
    return [];
  });
}

/**
 * Each tick while acting: a member whose node restarted while this coordinator could not hear it
 * (say, while it was still campaigning for a takeover) never gets a death event; without this its
 * trainer, gone with the old incarnation, would be left out of every step as a straggler forever.
 */
export function reconcileMembers(m: Core): void {
  const name = m.s.phase.name;
  if (!m.s.p || name === "campaigning" || name === "done" || name === "placing" || name === "finishing")
    return;
  for (const { member, detail } of staleMembers(m.s.p.members, m.w.alive, false))
    if (m.s.p.members.includes(member)) nodeLost(m, member.node, "dead", detail);
}

/** `node` is gone (dead, left, or restarted): drop its member, recover its reducers, finish or redo the step. */
function nodeLost(m: Core, node: string, kind: "dead" | "left", detail: string): void {
  const p = job(m).p;
  const lostReducer = p.reducers.addresses.some((a) => nodeOf(a) === node);
  if (p.members.some((x) => x.node === node))
    removeMember(m, node, kind === "dead" ? "death" : "leave", detail);
  if (m.s.evaluator?.startsWith(`${node}/`)) m.s.evaluator = undefined;
  const ph = m.s.phase;
  if (lostReducer && ph.name !== "placing") return recoverReducers(m, `reducer node ${node} ${kind}`);
  if (ph.name === "stepping" && p.members.length > 0 && p.members.every((x) => ph.done.has(x.node)))
    return commit(m);
  if (ph.name === "committing" && ph.contributors.includes(node))
    return abortAndRedo(m, `contributor ${node} ${kind} before the commit was applied`);
  if (p.members.length < m.cfg.spec.minWorkers && ph.name === "stepping") startStep(m);
}

/** Takes a member out of the job: its leases return to the pool, the membership epoch moves. */
export function removeMember(m: Core, node: string, kind: "death" | "leave", detail: string): void {
  const { p, ledger } = job(m);
  p.members = p.members.filter((x) => x.node !== node);
  m.s.readyJoiners = m.s.readyJoiners.filter((x) => x.node !== node);
  const ph = m.s.phase;
  if (ph.name === "stepping" || ph.name === "committing") ph.done.delete(node);
  if (ph.name === "committing") ph.ahead?.done.delete(node);
  ledger.revoke(node);
  p.epoch++;
  pendRecovery(m, record(m, { kind, node, detail }));
}

/** Whether `node` may be admitted now: a free slot, room under maxWorkers, not a member or joining already. */
export function mayAdmit(m: Core, node: string): boolean {
  const { phase, p, readyJoiners, joining } = m.s;
  // Not while recovering either: a joiner prepares from the reducers being rebuilt (or restored).
  if (!p || phase.name === "placing" || phase.name === "finishing" || phase.name === "recovering")
    return false;
  const taken = p.members.length + readyJoiners.length + joining.size;
  if (taken >= m.cfg.spec.maxWorkers || joining.has(node) || p.members.some((x) => x.node === node))
    return false;
  return trainable(m, []).includes(node);
}

/** Starts admitting `node` (spawn, prepare at the current version); it takes part from a later step boundary. */
export function maybeJoin(m: Core, node: string): void {
  const inc = m.w.alive.find((n) => n.node === node)?.inc;
  if (!mayAdmit(m, node) || inc === undefined) return;
  const { p } = job(m);
  m.s.joining.add(node);
  m.emit({
    kind: "admitJoiner",
    gen: m.s.generation,
    term: m.s.term,
    node,
    inc,
    version: p.step,
    reducers: p.reducers,
    restores: m.s.restores,
  });
}

/** Each tick while stepping or paused: admit any node with a free slot. */
export function admitCandidates(m: Core): void {
  const { phase, p } = m.s;
  if (!p || (phase.name !== "stepping" && phase.name !== "paused")) return;
  for (const node of trainable(
    m,
    p.members.map((x) => x.node),
  ))
    maybeJoin(m, node);
}

/**
 * A joiner is prepared: ready for the next step (at once when paused). One admitted before a
 * restore holds a version of the abandoned timeline: dropped (its node is admitted again).
 */
export function onJoinerPrepared(
  m: Core,
  node: string,
  member: Member,
  prepared: Prepared,
  restores: number,
): void {
  if (restores !== m.s.restores) return void m.s.ignored++;
  m.s.joining.delete(node);
  if (!m.w.alive.some((n) => n.node === node)) return;
  const { p } = job(m);
  m.s.readyJoiners.push(member);
  if (!p.backends.includes(prepared.backend)) p.backends = [...p.backends, prepared.backend].sort();
  if (m.s.phase.name === "paused") startStep(m);
}

/**
 * A joiner failed to prepare (e.g. a reducer it synced from died): clean up; the next tick tries
 * again. A failure of an admission from before a restore, or of a node that is a member or ready
 * again since, stops nothing: its trainer may be the one a later admission placed.
 */
export function onJoinerFailed(m: Core, node: string, error: string, restores: number): void {
  const { p } = job(m);
  const placedSince = p.members.some((x) => x.node === node) || m.s.readyJoiners.some((x) => x.node === node);
  if (restores !== m.s.restores || placedSince) return void m.s.ignored++;
  m.log("warn", { node, err: error }, `coordinator: admitting ${node} failed; going on without it`);
  m.s.joining.delete(node);
  m.emit({
    kind: "stopActors",
    addresses: [jobNames.trainer(m.cfg.job), jobNames.loader(m.cfg.job)].map((name) => `${node}/${name}`),
  });
}

/** Joiners that are ready take part from the next step. */
export function admitJoiners(m: Core): void {
  const { p } = job(m);
  for (const x of m.s.readyJoiners) {
    if (p.members.length >= m.cfg.spec.maxWorkers) break;
    p.members.push(x);
    p.epoch++;
    record(m, { kind: "join", node: x.node, detail: `joined at step ${p.step + 1}` });
  }
  m.s.readyJoiners = [];
}
