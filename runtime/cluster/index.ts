/** Membership, failure detection, leases and the cluster-wide view. */
export type { NodeState, NodeInfo, MembershipEvent, MembershipView, Lease } from "./types.js";
export {
  acquireLease,
  takeOverLease,
  readLease,
  openLeaseBucket,
  LeaseCandidate,
  type LeaseOptions,
  type LeaseCandidateOptions,
  type LeaseRecord,
} from "./lease.js";
export {
  MembershipTracker,
  isHolderDead,
  detectionTiming,
  type TrackerOptions,
  type DetectionTiming,
} from "./tracker.js";
export { Membership, type MembershipOptions, type LocalInfo } from "./membership.js";
export { Heartbeat, DeadNotice, heartbeatSubject, deadNoticeSubject } from "./heartbeat.js";
export {
  MembershipMonitor,
  readClusterView,
  openMembershipBucket,
  ClusterView,
  MEMBERSHIP_BUCKET,
  MONITOR_LEASE_KEY,
  VIEW_KEY,
  type MembershipMonitorOptions,
} from "./monitor.js";
export { JOBS_BUCKET, JobRecord, openJobsBucket, putJobRecord, readJobRecords } from "./jobs.js";
export { NodeIdInUseError } from "./errors.js";
