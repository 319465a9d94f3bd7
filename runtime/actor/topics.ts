import type { Unsubscribe } from "../transport/index.js";

/** Starts listening on a topic's subject, delivering to the paths in `paths` as the set is then. */
export type TopicListen = (topic: string, paths: ReadonlySet<string>) => Unsubscribe;

/**
 * Which local actors subscribe to which topic. A topic's subject is listened on while it has at
 * least one subscriber: the first subscription opens it, the last one to leave closes it.
 */
export class TopicSubscriptions {
  private readonly topics = new Map<string, { paths: Set<string>; off: Unsubscribe }>();

  constructor(private readonly listen: TopicListen) {}

  /** Subscribes a local path to a topic; the returned function unsubscribes it. */
  subscribe(topic: string, path: string): Unsubscribe {
    let entry = this.topics.get(topic);
    if (!entry) {
      const paths = new Set<string>();
      entry = { paths, off: this.listen(topic, paths) };
      this.topics.set(topic, entry);
    }
    entry.paths.add(path);
    const e = entry;
    return () => {
      e.paths.delete(path);
      if (e.paths.size === 0 && this.topics.get(topic) === e) {
        e.off();
        this.topics.delete(topic);
      }
    };
  }

  /** Stops listening on every topic (the system stops). */
  closeAll(): void {
    for (const t of this.topics.values()) t.off();
    this.topics.clear();
  }
}
