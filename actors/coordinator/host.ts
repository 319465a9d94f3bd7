import type { ActorRef, AskOptions, Message } from "../../runtime/actor/index.js";
import type { MembershipView } from "../../runtime/cluster/types.js";
import type { BlobStore, KvStore } from "../../runtime/store/types.js";
import type { JobRecord } from "../../runtime/cluster/jobs.js";
import type { Metrics } from "../../runtime/metrics.js";

export type { JobRecord };

/** Lease TTL of job coordinators: a standby takes over this long after the holder stops renewing (sooner when its node is seen dead). */
export const COORDINATOR_LEASE_MS = 3_000;

/** What a coordinator needs from the node that hosts it. */
export interface CoordinatorHost {
  nodeId: string;
  membership: MembershipView;
  /** Campaigns for a lease; `onAcquired` gets the fencing term, `onLost` fires if it is lost later. Returns a stop function. */
  campaign(key: string, onAcquired: (term: number) => void, onLost: (reason: string) => void): () => void;
  /** Releases the lease if held. */
  resign(): Promise<void>;
  /** The KV bucket of coordinator state. */
  stateKv(): Promise<KvStore>;
  writeJobRecord(record: JobRecord): Promise<void>;
  /** The object store of checkpoints (manifests are written, read and pruned there). */
  blobs(): Promise<BlobStore>;
  publish<M extends Message>(topic: string, msg: M): void;
  /** The node's metrics (recovery times are observed there), when it has them. */
  metrics?: Metrics;
  spawnRemote(node: string, kind: string, name: string, args: unknown, o: AskOptions): Promise<ActorRef>;
  stopRemote(address: string, o: AskOptions): Promise<void>;
}
