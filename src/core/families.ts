/** The Prometheus metric types deployctl writes. */
export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface FamilyDefinition {
  name: string;
  help: string;
  type: MetricType;
  buckets?: readonly number[];
  /** Labels every series of the family has (beside any --label ones). */
  labels?: readonly string[];
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Seconds to an hour and a bit: how long a deployment or one of its steps takes. */
const DURATION_BUCKETS = [
  1,
  5,
  10,
  30,
  MINUTE,
  2 * MINUTE,
  5 * MINUTE,
  10 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
] as const;

/** The longest duration taken as a deployment's (a week); anything longer is a mistake. */
export const MAX_DURATION_SECONDS = 7 * DAY;

/** Minutes to weeks: lead time for changes and time to restore. */
export const LONG_BUCKETS = [
  5 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
  4 * HOUR,
  8 * HOUR,
  DAY,
  2 * DAY,
  4 * DAY,
  7 * DAY,
  14 * DAY,
  30 * DAY,
] as const;

export const FAMILIES = {
  deployments: {
    name: 'deployctl_deployments_total',
    help: 'Deployments finished, by status.',
    type: 'counter',
    labels: ['status'],
  },
  deploymentDuration: {
    name: 'deployctl_deployment_duration_seconds',
    help: 'How long each deployment took.',
    type: 'histogram',
    buckets: DURATION_BUCKETS,
    labels: ['status'],
  },
  leadTime: {
    name: 'deployctl_lead_time_seconds',
    help: 'Lead time for changes: from commit time to deployed, once per newly deployed commit.',
    type: 'histogram',
    buckets: LONG_BUCKETS,
  },
  timeToRestore: {
    name: 'deployctl_time_to_restore_seconds',
    help: 'From the first failure of a failing streak to the success that ended it.',
    type: 'histogram',
    buckets: LONG_BUCKETS,
  },
  stepDuration: {
    name: 'deployctl_step_duration_seconds',
    help: 'How long each step of a deployment took.',
    type: 'histogram',
    buckets: DURATION_BUCKETS,
    labels: ['step', 'status'],
  },
  lastDeployment: {
    name: 'deployctl_last_deployment_timestamp_seconds',
    help: 'Finish time of the last deployment, any status.',
    type: 'gauge',
  },
  lastSuccess: {
    name: 'deployctl_last_success_timestamp_seconds',
    help: 'Finish time of the last successful deployment.',
    type: 'gauge',
  },
  lastFailure: {
    name: 'deployctl_last_failure_timestamp_seconds',
    help: 'Finish time of the last failed deployment.',
    type: 'gauge',
  },
  inProgress: {
    name: 'deployctl_deployment_in_progress',
    help: '1 while a deployment is in progress (between start and finish).',
    type: 'gauge',
  },
  info: {
    name: 'deployctl_deployment_info',
    help: 'The last deployment: version, commit and status. Always 1.',
    type: 'gauge',
  },
  lastSuccessInfo: {
    name: 'deployctl_last_success_info',
    help: 'The last successful deployment: version and commit, the commit the group runs now. Always 1.',
    type: 'gauge',
  },
  rollbacks: {
    name: 'deployctl_rollbacks_total',
    help: 'Successful deployments of a commit that is a proper ancestor of the commit the group ran.',
    type: 'counter',
  },
  deployedCommits: {
    name: 'deployctl_deployed_commit_sequence',
    help: 'Commits the group has deployed (each deployed commit and every commit a deployment brought), the most recent ones; the value is the record sequence of the last successful deployment that ran the commit or a descendant of it.',
    type: 'gauge',
    labels: ['commit'],
  },
  recordsApplied: {
    name: 'deployctl_records_applied_total',
    help: 'Records (deployments, starts, steps) applied to this group: the sequence that orders its memory of applied records.',
    type: 'counter',
  },
  sourceInfo: {
    name: 'deployctl_deployment_source_info',
    help: 'Where the last deployment came from: CI provider, branch, repository and build URL. Always 1.',
    type: 'gauge',
  },
  startedAt: {
    name: 'deployctl_deployment_started_timestamp_seconds',
    help: 'Start time of the deployment in progress; 0 when none is.',
    type: 'gauge',
  },
  lastDuration: {
    name: 'deployctl_last_deployment_duration_seconds',
    help: 'How long the last deployment took; NaN when its duration is not known.',
    type: 'gauge',
  },
  failingSince: {
    name: 'deployctl_failing_since_timestamp_seconds',
    help: 'Finish time of the first failure of the current failing streak; 0 when the last finished deployment succeeded.',
    type: 'gauge',
  },
  failedChanges: {
    name: 'deployctl_failed_changes_total',
    help: 'Deployments that are failed changes, each once, by the reason that first made it one (failure, rollback, verification, incident).',
    type: 'counter',
    labels: ['reason'],
  },
  failedRecovery: {
    name: 'deployctl_failed_deployment_recovery_seconds',
    help: 'Failed deployment recovery time: per failed change, from when its failure was known to recovery.',
    type: 'histogram',
    buckets: LONG_BUCKETS,
  },
  rework: {
    name: 'deployctl_rework_deployments_total',
    help: 'Deployments made while a failed change of the group was known and not yet recovered, and rollbacks.',
    type: 'counter',
  },
  verifications: {
    name: 'deployctl_verifications_total',
    help: 'deployctl verify results, by result (pass, fail, inconclusive).',
    type: 'counter',
    labels: ['result'],
  },
  lastVerification: {
    name: 'deployctl_last_verification_timestamp_seconds',
    help: 'When the latest verification reached its verdict, labelled with that verdict.',
    type: 'gauge',
    labels: ['result'],
  },
  openIncidents: {
    name: 'deployctl_open_incidents',
    help: 'Incidents of the group open now.',
    type: 'gauge',
  },
  incidents: {
    name: 'deployctl_incidents_total',
    help: 'Incidents opened.',
    type: 'counter',
  },
  lastIncident: {
    name: 'deployctl_last_incident_timestamp_seconds',
    help: 'Start time of the latest incident opened.',
    type: 'gauge',
  },
  rememberedDeployments: {
    name: 'deployctl_remembered_deployment_timestamp_seconds',
    help: 'The recent deployments the group remembers for failed changes, valued by finish time; labels say whether and why each is a failed change, when that was known and recovered, and whether it was rework.',
    type: 'gauge',
    labels: ['deployment', 'status', 'rollback', 'reason', 'known_at', 'recovered_at', 'rework'],
  },
  rememberedIncidents: {
    name: 'deployctl_remembered_incident_timestamp_seconds',
    help: 'Incidents the group remembers, valued by the time they opened: open ones (resolved_at empty) and recently resolved ones; `deployment` is the deployment an open one made a failed change.',
    type: 'gauge',
    labels: ['incident', 'resolved_at', 'deployment'],
  },
  appliedRecords: {
    name: 'deployctl_applied_record_timestamp_seconds',
    help: 'Identities of the records most recently applied to this group, so that a record sent twice counts once. The value is the record sequence (deployctl_records_applied_total) at which it was applied; older deployctl versions wrote a timestamp.',
    type: 'gauge',
    labels: ['record_id'],
  },
} as const satisfies Record<string, FamilyDefinition>;

/**
 * Bookkeeping that deployctl keeps on the gateway for itself and that grows a series per
 * deployment (record ids, deployed commits). Prometheus need not keep it: the example scrape job
 * drops it (metric_relabel_configs), so that recording never churns the TSDB.
 */
export const PER_DEPLOYMENT_BOOKKEEPING = [
  FAMILIES.appliedRecords,
  FAMILIES.deployedCommits,
  FAMILIES.rememberedDeployments,
  FAMILIES.rememberedIncidents,
] as const;

/** The regex of the scrape job's drop rule for PER_DEPLOYMENT_BOOKKEEPING (examples/prometheus/prometheus.yml). */
export const BOOKKEEPING_DROP_REGEX =
  'deployctl_(applied_record_timestamp_seconds|deployed_commit_sequence|remembered_deployment_timestamp_seconds|remembered_incident_timestamp_seconds)';
