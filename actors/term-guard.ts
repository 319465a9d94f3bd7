/**
 * Terms only from the current lease holder. A coordinator's term is the revision of the KV lease
 * it acquired (`jobNames.leaseKey`); trainers, reducers, loaders and evaluators adopt the highest
 * term they see. Trusted from the message, one `term: 1e15` froze an actor for good (it then
 * ignored the real coordinator's lower term). The guard checks a term against the lease instead:
 * the decision ({@link decideTerm}) is pure; {@link TermGuard} does the reading.
 * @module
 */
import { addressNode } from "../runtime/actor/address.js";
import type { ActorContext } from "../runtime/actor/index.js";
import { systemScheduler, type Scheduler } from "../runtime/clock.js";
import { openLeaseBucket, readLease } from "../runtime/cluster/lease.js";
import type { KvStore, StoreProvider } from "../runtime/store/types.js";
import type { Failure } from "../messages/index.js";
import { COORDINATOR_LEASE_MS } from "./coordinator/host.js";
import type { IgnoredMessages } from "./ignored.js";
import { jobNames } from "./job/names.js";

/** What the lease key says: its holder (`node:incarnation`) and its current KV revision. */
export interface LeaseView {
  holder: string;
  revision: number;
}

/** The guard's last read of the lease: undefined lease when nobody held it (or it was unreadable). */
export interface LeaseReading {
  lease: LeaseView | undefined;
  readAt: number;
}

/** Why a term was refused; a fixed code (the ignored-messages counter's `reason` label). */
export type TermRefusal = "no-lease" | "not-lease-holder" | "unknown-term" | "no-sender";

/**
 * What to do with one term: accept it, read the lease again first (now, or after `ms` when the
 * last reading is too recent to repeat), or refuse it.
 */
export type TermVerdict =
  | { kind: "accept" }
  | { kind: "reread" }
  | { kind: "wait"; ms: number }
  | { kind: "refuse"; reason: TermRefusal };

/** Least time between two reads of the lease that a refused term may cause. */
export const MIN_REREAD_MS = 200;
/** Sender nodes whose last refutation the guard remembers (the oldest is forgotten first). */
const MAX_REFUTED_SENDERS = 256;

/**
 * Decides one term from `senderNode` against the last reading. The term is accepted when the
 * sender's node is the holder's node and the term is at most the lease's current revision. Not
 * "equal to it": the holder renews by compare-and-set every second, so the revision moves on from
 * the term it acquired at (the term) with every renewal, and the reading does not say at which
 * revision the holder acquired. A term above the revision (or with no holder read) is not known
 * yet: a new holder may have acquired since the reading — every acquisition is a newer revision —
 * so the lease is read again, at most once per `minRereadMs`: a reading too recent to repeat makes
 * the term wait for the next allowed read rather than be refused (a coordinator that just took
 * over would otherwise lose its first commands). A sender whose unknown term a reading refuted
 * less than `minRereadMs` ago (`refutedAt`) is refused without waiting, so a flood of forged terms
 * from one node costs one wait, not one per message. A term at most the revision from another node
 * than the holder's cannot be a newer holder's: refused from a fresh reading.
 */
export function decideTerm(
  reading: LeaseReading | undefined,
  term: number,
  senderNode: string,
  now: number,
  minRereadMs = MIN_REREAD_MS,
  refutedAt?: number,
): TermVerdict {
  const lease = reading?.lease;
  if (lease && holderNode(lease.holder) === senderNode && term <= lease.revision) return { kind: "accept" };
  if (!reading || now - reading.readAt >= minRereadMs) return { kind: "reread" };
  const unknown = !lease || term > lease.revision;
  const refuted = refutedAt !== undefined && now - refutedAt < minRereadMs;
  if (unknown && !refuted) return { kind: "wait", ms: reading.readAt + minRereadMs - now };
  if (!lease) return { kind: "refuse", reason: "no-lease" };
  return {
    kind: "refuse",
    reason: holderNode(lease.holder) === senderNode ? "unknown-term" : "not-lease-holder",
  };
}

/** The node of a lease holder `node:incarnation` (node ids may hold `:`, incarnations never do). */
export function holderNode(holder: string): string {
  const i = holder.lastIndexOf(":");
  return i < 0 ? holder : holder.slice(0, i);
}

export { addressNode };

/** Checks one term from a sender's address; resolves to a refusal, or undefined when accepted. */
export type TermCheck = (term: number, sender: string | undefined) => Promise<TermRefusal | undefined>;

/**
 * One job's term checks on one node: keeps the last reading of the job's coordinator lease and
 * reads it again (one read at a time) when {@link decideTerm} asks. A failed read counts as "no
 * lease" until the next allowed read: an unknown term is refused rather than trusted.
 */
export class TermGuard {
  private reading: LeaseReading | undefined;
  private inFlight: Promise<void> | undefined;
  /** When a reading last refuted each sender node's unknown term (bounded: senders are nodes). */
  private readonly refuted = new Map<string, number>();

  /** `read` reads the lease key (undefined: nobody holds it). */
  constructor(
    private readonly read: () => Promise<LeaseView | undefined>,
    private readonly scheduler: Scheduler = systemScheduler,
    private readonly minRereadMs = MIN_REREAD_MS,
  ) {}

  /** {@link TermCheck} for this guard. */
  readonly check: TermCheck = async (term, sender) => {
    const node = addressNode(sender);
    if (node === undefined) return "no-sender";
    const decide = (refutedAt?: number) =>
      decideTerm(this.reading, term, node, this.scheduler.now(), this.minRereadMs, refutedAt);
    let verdict = decide(this.refuted.get(node));
    if (verdict.kind === "wait") {
      await this.scheduler.sleep(verdict.ms);
      // Whatever reading is there now was taken after this term arrived: no second wait.
      verdict = decide(this.scheduler.now());
    }
    if (verdict.kind === "reread") {
      await this.reread();
      verdict = decide(this.scheduler.now());
    }
    if (verdict.kind === "accept") return undefined;
    this.noteRefuted(node);
    return verdict.kind === "refuse" ? verdict.reason : "unknown-term";
  };

  private noteRefuted(node: string): void {
    this.refuted.delete(node);
    this.refuted.set(node, this.scheduler.now());
    const oldest = this.refuted.keys().next();
    if (this.refuted.size > MAX_REFUTED_SENDERS && !oldest.done) this.refuted.delete(oldest.value);
  }

  private reread(): Promise<void> {
    this.inFlight ??= this.read().then(
      (lease) => this.settle(lease),
      () => this.settle(undefined),
    );
    return this.inFlight;
  }

  private settle(lease: LeaseView | undefined): void {
    this.reading = { lease, readAt: this.scheduler.now() };
    this.inFlight = undefined;
  }
}

/**
 * What an actor does with a refused term: counts it (never raising its own term) and, for an
 * ask, answers with a failure so the asker does not wait out its timeout.
 */
export function refuseTerm<M extends { type: string }>(
  ctx: ActorContext<M>,
  ignored: IgnoredMessages,
  type: string,
  reason: TermRefusal,
  term: number,
): void {
  ignored.note(ctx.log, type, reason, `term ${term} from ${ctx.from ?? "?"}`);
  if (ctx.isAsk)
    ctx.reply<Failure>({
      type: "sys.failure",
      code: "bad-input",
      message: `term ${term} refused: ${reason}`,
    });
}

/**
 * The check at an actor's message entry point: whether `term` (from `sender`, by default the
 * message's sender) is refused; a refused one is counted and, for an ask, answered with a failure.
 * Without a check (an actor outside a cluster: the reduce bench) every term passes.
 */
export async function termRefused<M extends { type: string }>(
  check: TermCheck | undefined,
  ctx: ActorContext<M>,
  ignored: IgnoredMessages,
  msg: { type: string; term: number },
  sender: string | undefined = ctx.from,
): Promise<boolean> {
  const reason = await check?.(msg.term, sender);
  if (reason) refuseTerm(ctx, ignored, msg.type, reason, msg.term);
  return reason !== undefined;
}

/**
 * A {@link TermGuard} on the coordinator lease of `job` in a node's stores (JetStream KV, or the
 * memory KV of the embedded cluster). The bucket is opened on first use and again after a failure.
 */
export function leaseTermCheck(stores: StoreProvider, job: string, scheduler?: Scheduler): TermCheck {
  let bucket: Promise<KvStore> | undefined;
  const read = async (): Promise<LeaseView | undefined> => {
    bucket ??= openLeaseBucket(stores, COORDINATOR_LEASE_MS);
    try {
      const rec = await readLease(await bucket, jobNames.leaseKey(job));
      return rec && { holder: rec.holder, revision: rec.revision };
    } catch (error) {
      bucket = undefined;
      throw error;
    }
  };
  return new TermGuard(read, scheduler).check;
}
