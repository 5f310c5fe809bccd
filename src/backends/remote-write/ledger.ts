/**
 * The deployment ledger: how a record becomes remote-write samples. Pure: no clock, no I/O.
 *
 * A store behind remote-write has no compare-and-swap, so nothing here is read, changed and
 * written back. Each deployment, start and step is written as samples stamped at its own
 * time; counts, sums and means over a window come from count_over_time and sum_over_time.
 * A retried write carries identical samples, which the store keeps once.
 */

import { type CommitMemory, rememberedAncestors, successfulChange } from '../../core/deployed-change.js';
import { DeployctlError } from '../../core/errors.js';
import { LONG_BUCKETS } from '../../core/families.js';
import { type DeploymentRecord, type Grouping, type GroupRecord, recordTime } from '../../core/record.js';
import { sortedLabels, type TimeSeries } from './protobuf.js';

/** The metric contract of the remote-write backend. */
export const LEDGER = {
  /** One sample per finished deployment; the value is its finish time (Unix seconds). Labels: status, --label ones. */
  finished: 'deployctl_deployment_finished_timestamp_seconds',
  /** One sample per finished deployment whose duration is known; the value is that duration. Labels: status, --label ones. */
  duration: 'deployctl_deployment_finished_duration_seconds',
  /** One sample per finished deployment; the value is its finish time. Labels: status, version, commit, --label ones. */
  version: 'deployctl_deployment_version_finished_timestamp_seconds',
  /** Per successful deployment that brought new commits: their lead times as a histogram of that one deployment. */
  leadTimeSum: 'deployctl_deployment_lead_time_seconds_sum',
  leadTimeCount: 'deployctl_deployment_lead_time_seconds_count',
  leadTimeBucket: 'deployctl_deployment_lead_time_seconds_bucket',
  /** One sample per success that ended a failing streak; the value is the time to restore. */
  timeToRestore: 'deployctl_deployment_time_to_restore_seconds',
  /**
   * One sample per rollback (a successful deployment of a proper ancestor of the running commit),
   * at the rollback deployment's sample time; the value is its finish time. Labels: job, service, environment.
   */
  rollback: 'deployctl_deployment_rollback_timestamp_seconds',
  /** One sample per `deployctl start`; the value is the start time (Unix seconds). */
  started: 'deployctl_deployment_started_timestamp_seconds',
  /** One sample per `deployctl step`; the value is its duration. Labels: step, status. */
  step: 'deployctl_step_finished_duration_seconds',
  /**
   * One sample per successful deployment with a commit; the value is its finish time. Labels:
   * commit, and `ancestors`: the commit and its recent ancestors (REMEMBERED_ANCESTORS), each cut
   * to ANCESTOR_PREFIX characters, comma-separated. A commit's ancestors are always the same, so
   * a group has one such series per deployed commit, as for LEDGER.version.
   */
  ancestors: 'deployctl_deployment_ancestors_finished_timestamp_seconds',
} as const;

/** How much of a SHA the ancestors label keeps: 8 hex characters tell a group's recent commits apart. */
const ANCESTOR_PREFIX = 8;

/** The ancestors label of a deployed commit. */
export function ancestorsLabel(change: Pick<DeploymentRecord, 'commit' | 'history'>): string {
  return rememberedAncestors(change)
    .map((sha) => sha.slice(0, ANCESTOR_PREFIX))
    .join(',');
}

/**
 * What the group's past successful deployments say of its commits: each deployed commit and the
 * ancestors remembered with it (deployed by it too); the running commit is the latest's.
 */
function commitMemory(deployments: readonly PastEvent[]): CommitMemory {
  const successes = deployments.filter((e) => e.status === 'success' && e.commit);
  const deployed = new Set(successes.map((e) => e.commit!));
  const prefixes = new Set(successes.flatMap((e) => e.ancestors?.split(',') ?? []));
  const latest = successes.at(-1);
  const runningAncestors = new Set(latest?.ancestors?.split(',') ?? []);
  const prefix = (sha: string) => sha.slice(0, ANCESTOR_PREFIX);
  return {
    has: (sha) => deployed.has(sha) || prefixes.has(prefix(sha)),
    empty: successes.length === 0,
    running: latest?.commit,
    runs: (sha) => sha === latest?.commit || runningAncestors.has(prefix(sha)),
  };
}

/** How far back a record looks for the deployments before it (the previous success, a failing streak, a start). */
export const HISTORY_LOOKBACK = '365d';

/** 32-bit FNV-1a of the record id: the same id always lands on the same millisecond. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * The sample time of a record: a millisecond chosen by the record id in the second that ends at
 * its whole finish second, so that a sample is never stamped after the deployment finished (a
 * query right after a record sees it) and records of different seconds keep their order. Two
 * deployments of one group finishing in the same second (or millisecond) land on different
 * milliseconds unless their ids pick the same one (1 in 1000 per pair; see deploymentLedger);
 * a retry of one record lands on the same millisecond, so the store keeps it once.
 */
export function sampleTimeMs(seconds: number, id: string): number {
  return Math.floor(seconds) * 1000 - 999 + (fnv1a(id) % 1000);
}

/** A past deployment or start of the group, as the store returns it. */
export interface PastEvent {
  kind: 'deployment' | 'start';
  /** Unix seconds, exact (from the sample's value). */
  at: number;
  /** Sample time in milliseconds: identifies the record inside its group. */
  timestampMs: number;
  status?: string;
  commit?: string;
  version?: string;
  /** A success's ancestors label (see LEDGER.ancestors). */
  ancestors?: string;
}

export interface Ledger {
  series: TimeSeries[];
  leadTimes?: number[];
  /** A successful deployment of an ancestor of the running commit. */
  rollback?: boolean;
  timeToRestore?: number;
  durationSeconds?: number;
  /** Deployments of the group by status, this one included, over the history read (HISTORY_LOOKBACK). */
  totals?: Record<string, number>;
  notices: string[];
}

/** What a raw-sample query returns: series with their labels and [seconds, "value"] pairs. */
export interface RawSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

/**
 * The group's past events from one query over LEDGER.finished, LEDGER.version, LEDGER.started and
 * LEDGER.ancestors: a deployment's time and status come from the first, its commit and version
 * from the second, a success's ancestors from the last (matched by sample time, unique inside a
 * group), oldest first.
 */
export function pastEvents(raw: readonly RawSeries[]): PastEvent[] {
  const deployments = new Map<number, PastEvent>();
  const starts: PastEvent[] = [];
  const info = new Map<number, { commit?: string; version?: string }>();
  const ancestry = new Map<number, string>();
  for (const series of raw) {
    const name = series.metric.__name__;
    for (const [seconds, value] of series.values) {
      const timestampMs = Math.round(seconds * 1000);
      if (name === LEDGER.finished) {
        deployments.set(timestampMs, {
          kind: 'deployment',
          at: Number(value),
          timestampMs,
          ...(series.metric.status !== undefined && { status: series.metric.status }),
        });
      } else if (name === LEDGER.version) {
        info.set(timestampMs, { commit: series.metric.commit ?? '', version: series.metric.version ?? '' });
      } else if (name === LEDGER.started) {
        starts.push({ kind: 'start', at: Number(value), timestampMs });
      } else if (name === LEDGER.ancestors) {
        ancestry.set(timestampMs, series.metric.ancestors ?? '');
      }
    }
  }
  for (const [timestampMs, details] of info) {
    const deployment = deployments.get(timestampMs);
    if (deployment) Object.assign(deployment, details);
  }
  for (const [timestampMs, ancestors] of ancestry) {
    const deployment = deployments.get(timestampMs);
    if (deployment) deployment.ancestors = ancestors;
  }
  return [...deployments.values(), ...starts].sort((a, b) => a.timestampMs - b.timestampMs);
}

function series(name: string, labels: Record<string, string>, value: number, timestampMs: number): TimeSeries {
  return { labels: sortedLabels({ ...labels, __name__: name }), samples: [{ value, timestampMs }] };
}

/**
 * The samples of one record, given the group's events up to the end of its sample second (see
 * historyTimeMs): those before its sample time are its history, the others only keep two
 * deployments off one millisecond.
 */
export function ledgerFor(grouping: Grouping, record: GroupRecord, history: readonly PastEvent[]): Ledger {
  const group = { job: grouping.job, service: grouping.service, environment: grouping.environment };
  if (record.kind === 'start') {
    return {
      series: [series(LEDGER.started, group, record.startedAt, sampleTimeMs(record.startedAt, record.id))],
      notices: [],
    };
  }
  if (record.kind === 'step') {
    const t = sampleTimeMs(record.finishedAt, record.id);
    return {
      series: [series(LEDGER.step, { ...group, step: record.step, status: record.status }, record.durationSeconds, t)],
      durationSeconds: record.durationSeconds,
      notices: [],
    };
  }
  if (record.kind !== 'deployment')
    throw new DeployctlError(`a ${record.kind} record cannot be written to remote-write yet`, 1);
  return deploymentLedger(group, record, history);
}

function deploymentLedger(
  group: Record<string, string>,
  record: DeploymentRecord,
  known: readonly PastEvent[],
): Ledger {
  // Another deployment of the group already on this millisecond (two ids picked the same one):
  // take the next free one. A retry sends the samples kept with the record, so it never moves.
  const taken = new Set(known.filter((e) => e.kind === 'deployment').map((e) => e.timestampMs));
  let t = sampleTimeMs(record.finishedAt, record.id);
  while (taken.has(t)) t += 1;
  const history = known.filter((e) => e.timestampMs < t);
  const notices: string[] = [];
  const labels = { ...record.labels, ...group, status: record.status };
  const out: TimeSeries[] = [
    series(LEDGER.finished, labels, record.finishedAt, t),
    series(LEDGER.version, { ...labels, version: record.version, commit: record.commit }, record.finishedAt, t),
  ];
  const deployments = history.filter((e) => e.kind === 'deployment');

  let durationSeconds = record.durationSeconds;
  if (durationSeconds === undefined && record.durationFromGatewayStart) {
    const lastFinish = deployments.at(-1)?.timestampMs ?? -Infinity;
    const start = history
      .filter((e) => e.kind === 'start' && e.timestampMs > lastFinish && e.at <= record.finishedAt)
      .at(-1);
    if (start) durationSeconds = record.finishedAt - start.at;
    else
      notices.push(
        'no start of this deployment is known (deployctl start was not run, or wrote to another store): no duration observed',
      );
  }
  if (durationSeconds !== undefined) out.push(series(LEDGER.duration, labels, durationSeconds, t));

  let leadTimes: number[] | undefined;
  let rollback = false;
  if (record.status === 'success') {
    // The same decision as on the Pushgateway: a rollback brings nothing; otherwise every commit
    // never deployed before (by the history's reach) counts once.
    const change = successfulChange(record, commitMemory(deployments));
    notices.push(...change.notices);
    rollback = change.rollback;
    if (rollback) out.push(series(LEDGER.rollback, group, record.finishedAt, t));
    if (change.seconds.length > 0) {
      leadTimes = change.seconds;
      out.push(...leadTimeHistogram(group, change.seconds, t));
    }
    if (record.commit) {
      out.push(
        series(
          LEDGER.ancestors,
          { ...group, commit: record.commit, ancestors: ancestorsLabel(record) },
          record.finishedAt,
          t,
        ),
      );
    }
  }

  let timeToRestore: number | undefined;
  if (record.status === 'success') {
    const lastSuccess = deployments.filter((e) => e.status === 'success').at(-1)?.timestampMs ?? -Infinity;
    const streakStart = deployments.find((e) => e.status === 'failure' && e.timestampMs > lastSuccess);
    if (streakStart) {
      timeToRestore = Math.max(0, record.finishedAt - streakStart.at);
      out.push(series(LEDGER.timeToRestore, group, timeToRestore, t));
    }
  }

  // Every deployment the read found, those of the same second after this one's sample time too.
  const totals: Record<string, number> = { success: 0, failure: 0, cancelled: 0 };
  for (const status of [...known.filter((e) => e.kind === 'deployment').map((e) => e.status), record.status])
    if (status !== undefined) totals[status] = (totals[status] ?? 0) + 1;

  return {
    series: out,
    notices,
    totals,
    ...(durationSeconds !== undefined && { durationSeconds }),
    ...(leadTimes && { leadTimes }),
    ...(rollback && { rollback }),
    ...(timeToRestore !== undefined && { timeToRestore }),
  };
}

function leadTimeHistogram(group: Record<string, string>, seconds: number[], t: number): TimeSeries[] {
  const buckets = [
    ...LONG_BUCKETS.map((le) => [String(le), seconds.filter((s) => s <= le).length] as const),
    ['+Inf', seconds.length] as const,
  ];
  return [
    series(
      LEDGER.leadTimeSum,
      group,
      seconds.reduce((a, b) => a + b, 0),
      t,
    ),
    series(LEDGER.leadTimeCount, group, seconds.length, t),
    ...buckets.map(([le, count]) => series(LEDGER.leadTimeBucket, { ...group, le }, count, t)),
  ];
}

/** The PromQL selector of one group's history, for a query at the record's own time. */
export function historyQuery(grouping: Grouping): string {
  const names = [LEDGER.finished, LEDGER.version, LEDGER.started, LEDGER.ancestors].join('|');
  return `{__name__=~"${names}", job=${JSON.stringify(grouping.job)}, service=${JSON.stringify(grouping.service)}, environment=${JSON.stringify(grouping.environment)}}[${HISTORY_LOOKBACK}]`;
}

/** The time at which the history is read: the last millisecond a record of its finish second can have. */
export function historyTimeMs(record: GroupRecord): number {
  const seconds = recordTime(record);
  return Math.floor(seconds) * 1000;
}
