/**
 * The subjects an actor system publishes and listens on. Every subject a node publishes on carries
 * the sender's node id as one token, so a NATS server can bind it to the connection's user (a node
 * may publish only under its own id) and a receiver can check the envelope's `from` against it:
 *
 * - actor messages: `flock.<cluster>.node.<to>.<from>` (a node listens on `flock.<cluster>.node.<me>.*`);
 * - topics: `flock.<cluster>.from.<from>.topic.<topic>`: the sender comes before the topic, whose
 *   name may hold dots (`job.<id>.params`), so one `*` finds the sender and one permission
 *   (`flock.<cluster>.from.<me>.>`) covers every topic a node publishes.
 *
 * Node ids are therefore single subject tokens: no dots (see {@link isValidNodeId}).
 * @module
 */
import { isValidSegment } from "./address.js";

/** Whether a name may be a node id: an address segment that is also one subject token (no `.`). */
export function isValidNodeId(id: string): boolean {
  return isValidSegment(id) && !id.includes(".");
}

/** The subject `from` publishes on to reach node `to`. */
export function nodeSubject(cluster: string, to: string, from: string): string {
  return `flock.${cluster}.node.${to}.${from}`;
}

/** The pattern node `me` listens on for actor messages from any sender. */
export function nodeInbox(cluster: string, me: string): string {
  return `flock.${cluster}.node.${me}.*`;
}

/** The subject `from` publishes a topic's messages on. */
export function topicSubject(cluster: string, topic: string, from: string): string {
  return `flock.${cluster}.from.${from}.topic.${topic}`;
}

/** The pattern that hears a topic from every sender. */
export function topicPattern(cluster: string, topic: string): string {
  return `flock.${cluster}.from.*.topic.${topic}`;
}

/**
 * The sender token of a node or topic subject of this module (undefined for any other subject).
 * Runs for every inbound message: index arithmetic rather than `split`.
 */
export function senderOf(subject: string): string | undefined {
  if (!subject.startsWith("flock.")) return undefined;
  const c = subject.indexOf(".", 6); // end of the cluster token
  if (c < 0) return undefined;
  if (subject.startsWith(".node.", c)) {
    const to = subject.indexOf(".", c + 6);
    const last = subject.lastIndexOf(".");
    return to > c + 6 && last === to ? subject.slice(to + 1) || undefined : undefined;
  }
  if (subject.startsWith(".from.", c)) {
    const end = subject.indexOf(".", c + 6);
    return end > c + 6 && subject.startsWith(".topic.", end) ? subject.slice(c + 6, end) : undefined;
  }
  return undefined;
}

/** The node part of an address (`node/path`), or undefined when there is no `/`. */
export function nodeOfAddress(address: unknown): string | undefined {
  if (typeof address !== "string") return undefined;
  const slash = address.indexOf("/");
  return slash > 0 ? address.slice(0, slash) : undefined;
}

/**
 * Why an envelope received on `subject` does not come from who it says (its `from` names another
 * node than the subject's sender token), or undefined when it does.
 */
export function senderMismatch(subject: string, from: unknown): string | undefined {
  const sender = senderOf(subject);
  const claimed = nodeOfAddress(from);
  if (sender !== undefined && claimed === sender) return undefined;
  const shown = typeof from === "string" ? from.slice(0, 200) : typeof from;
  return `envelope from "${shown}" arrived on ${subject.slice(0, 300)} (sender ${sender ?? "unknown"})`;
}
