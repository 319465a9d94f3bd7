/**
 * The NATS permissions of flock's three roles, as pure data: which subjects each user may publish
 * and subscribe to. The subject layout is `runtime/actor/subjects.ts`'s and
 * `runtime/cluster/heartbeat.ts`'s; the JetStream streams are those `JetStreamStores` creates
 * (`KV_flock_<cluster>_<bucket>`, `OBJ_flock_<cluster>_<bucket>`).
 * @module
 */
import { COORDINATOR_LEASE_MS } from "../../actors/coordinator/host.js";
import { CHECKPOINTS_BUCKET, JOB_STATE_BUCKET } from "../../actors/job/names.js";
import { JOBS_BUCKET } from "../../runtime/cluster/jobs.js";
import { DATASETS_BUCKET } from "../../actors/compute/dataset-store.js";
import { MEMBERSHIP_BUCKET } from "../../runtime/cluster/monitor.js";

/** One user's allow lists (everything else is denied). */
export interface Permissions {
  publish: string[];
  subscribe: string[];
}

/** A role of a flock deployment. */
export type Role = "daemon" | "submitter" | "observer";

/**
 * Lease buckets are named by their TTL (`leases-<ms>`): the coordinators' lease, the membership
 * monitor's (the daemon's `--dead-after-ms`, default 2000) and the node identity leases
 * (`max(15000, 3 × dead-after)`). Defaults for the daemon's default `--dead-after-ms`.
 */
export function defaultLeaseTtls(deadAfterMs = 2000): number[] {
  return [...new Set([COORDINATOR_LEASE_MS, deadAfterMs, Math.max(15_000, deadAfterMs * 3)])].sort(
    (a, b) => a - b,
  );
}

/** The inbox prefix of one identity: the only `_INBOX` subjects its user may subscribe to. */
export function inboxPrefix(cluster: string, identity: string): string {
  return `_INBOX_${cluster}_${identity}`;
}

/** JetStream API subjects that read one stream: info, message get, ordered consumers (watch, keys, object get). */
function streamReads(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
    `$JS.FC.${stream}.>`,
  ];
}

/** What a daemon needs of one stream besides reading it: create it on first use, and (objects) purge a blob's chunks. */
function streamWrites(stream: string, objects: boolean): string[] {
  return [`$JS.API.STREAM.CREATE.${stream}`, ...(objects ? [`$JS.API.STREAM.PURGE.${stream}`] : [])];
}

/** The KV buckets (logical names) of a cluster. */
function kvBuckets(leaseTtls: number[]): string[] {
  return [MEMBERSHIP_BUCKET, JOBS_BUCKET, JOB_STATE_BUCKET, ...leaseTtls.map((t) => `leases-${t}`)];
}

const bucket = (cluster: string, name: string): string => `flock_${cluster}_${name}`;

/** A daemon's permissions: speak as `node` only, hear what is addressed to it, use the cluster's buckets. */
export function daemonPermissions(cluster: string, node: string, leaseTtls: number[]): Permissions {
  const c = `flock.${cluster}`;
  // STREAM.NAMES: nats.js looks the object store's stream up by subject on get/watch/list (a
  // checkpoint read in reducer recovery); it lists the names of the account's streams, no data.
  const js: string[] = ["$JS.API.INFO", "$JS.API.STREAM.NAMES"];
  for (const b of kvBuckets(leaseTtls)) {
    const name = bucket(cluster, b);
    js.push(...streamReads(`KV_${name}`), ...streamWrites(`KV_${name}`, false), `$KV.${name}.>`);
  }
  const objects = bucket(cluster, CHECKPOINTS_BUCKET);
  js.push(...streamReads(`OBJ_${objects}`), ...streamWrites(`OBJ_${objects}`, true), `$O.${objects}.>`);
  // Datasets: read (a flock:// source's shards) and create the bucket at start; never write one.
  const datasets = bucket(cluster, DATASETS_BUCKET);
  js.push(...streamReads(`OBJ_${datasets}`), ...streamWrites(`OBJ_${datasets}`, false));
  return {
    publish: [`${c}.node.*.${node}`, `${c}.from.${node}.>`, `${c}.hb.${node}`, `${c}.dead.${node}`, ...js],
    subscribe: [
      `${c}.node.${node}.*`,
      `${c}.from.*.topic.>`,
      `${c}.hb.*`,
      `${c}.dead.*`,
      `${inboxPrefix(cluster, node)}.>`,
    ],
  };
}

/** Read access to the jobs and membership buckets (what `flock status` reads). */
function statusReads(cluster: string): string[] {
  return [
    "$JS.API.INFO",
    ...[MEMBERSHIP_BUCKET, JOBS_BUCKET].flatMap((b) => streamReads(`KV_${bucket(cluster, b)}`)),
  ];
}

/**
 * The submitter's permissions (`flock train`, the API): asks nodes (`sys.spawn` of a coordinator,
 * `sys.stop` of its follower, `coord.cancel` of a job) as `submitter`, follows job events and
 * heartbeats, reads job records, the jobs' state records (the durable end of a job), the
 * coordinators' lease (a job's end is believed only from its lease holder's node) and the object
 * store (a finished job's model, to export it).
 * It cannot heartbeat, publish a topic, or speak as any node.
 */
export function submitterPermissions(cluster: string, id = "submitter"): Permissions {
  const c = `flock.${cluster}`;
  // The coordinators' lease, read to check that a job's end comes from its coordinator's node;
  // the jobs' state records, read to follow a job whose end event was lost (`flock job wait`).
  const leases = streamReads(`KV_${bucket(cluster, `leases-${COORDINATOR_LEASE_MS}`)}`);
  const states = streamReads(`KV_${bucket(cluster, JOB_STATE_BUCKET)}`);
  // The object store, read to export a finished job's model (`flock train --out`); STREAM.NAMES:
  // nats.js looks the store's stream up by subject on get. No write, no purge.
  const objects = ["$JS.API.STREAM.NAMES", ...streamReads(`OBJ_${bucket(cluster, CHECKPOINTS_BUCKET)}`)];
  // The datasets bucket, read and written: `flock data put|rm` (and the submit check fetches a flock:// source).
  const datasets = bucket(cluster, DATASETS_BUCKET);
  const data = [
    ...streamReads(`OBJ_${datasets}`),
    ...streamWrites(`OBJ_${datasets}`, true),
    `$O.${datasets}.>`,
  ];
  return {
    publish: [`${c}.node.*.${id}`, ...statusReads(cluster), ...leases, ...states, ...objects, ...data],
    subscribe: [
      `${c}.node.${id}.*`,
      `${c}.from.*.topic.job.*.events`,
      `${c}.hb.*`,
      `${inboxPrefix(cluster, id)}.>`,
    ],
  };
}

/**
 * The observer's permissions (`flock status`, `flock dashboard`, `flock data ls`): reads heartbeats, job records,
 * the jobs' live events (the dashboard's curves), the jobs' state records (a result the dashboard
 * did not hear live) and the dataset list (`flock data ls`), publishes nothing else.
 */
export function observerPermissions(cluster: string, id = "observer"): Permissions {
  // The datasets bucket, read only (`flock data ls`).
  const datasets = ["$JS.API.STREAM.NAMES", ...streamReads(`OBJ_${bucket(cluster, DATASETS_BUCKET)}`)];
  // The jobs' state records, read only: the dashboard shows the result of a job that ended before it heard it live.
  const states = streamReads(`KV_${bucket(cluster, JOB_STATE_BUCKET)}`);
  return {
    publish: [...statusReads(cluster), ...datasets, ...states],
    subscribe: [
      `flock.${cluster}.hb.*`,
      `flock.${cluster}.from.*.topic.job.*.events`,
      `${inboxPrefix(cluster, id)}.>`,
    ],
  };
}
