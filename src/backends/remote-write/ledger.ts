/**
 * The deployment ledger: how a record becomes remote-write samples. Pure: no clock, no I/O.
 *
 * A store behind remote-write has no compare-and-swap, so nothing here is read, changed and
 * written back. Each deployment, start and step is written as samples stamped at its own
 * time; counts, sums and means over a window come from count_over_time and sum_over_time.
 * A retried write carries identical samples, which the store keeps once.
 */

import { type CommitMemory, rememberedAncestors, successfulChange } from '../../core/deployed-change.js';
import {
  ATTRIBUTION_WINDOW_BOUNDS,
  applyFailureEvent,
  emptyMemory,
  type FailureEvent,
  type FailureMemory,
  type FailureOutcome,
  incidentEvent,
  unattributedNotice,
  verificationEvent,
} from '../../core/failed-change.js';
import { LONG_BUCKETS } from '../../core/families.js';
import {
  type DeploymentRecord,
  type Grouping,
  type GroupRecord,
  type IncidentRecord,
  recordTime,
  type VerificationRecord,
  type VerificationResult,
} from '../../core/record.js';
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
  /**
   * One sample per failed change, at the FAILED deployment's own sample time; the value is its
   * finish time. Labels: reason (failure, rollback, verification, incident: the first).
   */
  failedChange: 'deployctl_deployment_failed_change_timestamp_seconds',
  /** One sample per recovered failed change, at the recovery's time; the value is the recovery time (s). */
  failedRecovery: 'deployctl_deployment_failed_recovery_seconds',
  /** One sample per rework deployment, at its own sample time; the value is its finish time. */
  rework: 'deployctl_deployment_rework_timestamp_seconds',
  /** One sample per verification, at its finish; the value is its finish time. Labels: result. */
  verification: 'deployctl_verification_finished_timestamp_seconds',
  /** With each verification, at the same sample time: when its checks began (for attribution). */
  verificationStarted: 'deployctl_verification_started_timestamp_seconds',
  /**
   * One sample per incident open or resolve that changed something, at its time; the value is
   * that time. Labels: incident (its id), action (open, resolve).
   */
  incident: 'deployctl_incident_timestamp_seconds',
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

/** A past deployment, start, verification or incident of the group, as the store returns it. */
export interface PastEvent {
  kind: 'deployment' | 'start' | 'verification' | 'incident';
  /** Unix seconds, exact (from the sample's value). */
  at: number;
  /** Sample time in milliseconds: identifies the record inside its group. */
  timestampMs: number;
  status?: string;
  commit?: string;
  version?: string;
  /** A success's ancestors label (see LEDGER.ancestors). */
  ancestors?: string;
  /** A deployment that was a rollback. */
  rollback?: boolean;
  /** A verification's result and when its checks began. */
  result?: VerificationResult;
  startedAt?: number;
  /** An incident's id and action. */
  incident?: string;
  action?: 'open' | 'resolve';
  /** An incident open's attribution window in seconds, when not the default. */
  window?: number;
}

export interface Ledger {
  series: TimeSeries[];
  leadTimes?: number[];
  /** A successful deployment of an ancestor of the running commit. */
  rollback?: boolean;
  timeToRestore?: number;
  durationSeconds?: number;
  /** Deployments this record made failed changes. */
  failedChanges?: { reason: FailureOutcome['failedChanges'][number]['reason']; at: number }[];
  recoverySeconds?: number[];
  rework?: boolean;
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
  const rollbacks = new Set<number>();
  const verifications = new Map<number, PastEvent>();
  const verificationStarts = new Map<number, number>();
  const incidents: PastEvent[] = [];
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
      } else if (name === LEDGER.rollback) {
        rollbacks.add(timestampMs);
      } else if (name === LEDGER.verification) {
        const result = series.metric.result as VerificationResult;
        verifications.set(timestampMs, { kind: 'verification', at: Number(value), timestampMs, result });
      } else if (name === LEDGER.verificationStarted) {
        verificationStarts.set(timestampMs, Number(value));
      } else if (name === LEDGER.incident) {
        const action = series.metric.action === 'resolve' ? 'resolve' : 'open';
        const window = Number(series.metric.attribution_window);
        incidents.push({
          kind: 'incident',
          at: Number(value),
          timestampMs,
          incident: series.metric.incident ?? '',
          action,
          ...(window > 0 && { window }),
        });
      }
    }
  }
  for (const timestampMs of rollbacks) {
    const deployment = deployments.get(timestampMs);
    if (deployment) deployment.rollback = true;
  }
  for (const [timestampMs, verification] of verifications)
    verification.startedAt = verificationStarts.get(timestampMs) ?? verification.at;
  for (const [timestampMs, details] of info) {
    const deployment = deployments.get(timestampMs);
    if (deployment) Object.assign(deployment, details);
  }
  for (const [timestampMs, ancestors] of ancestry) {
    const deployment = deployments.get(timestampMs);
    if (deployment) deployment.ancestors = ancestors;
  }
  return [...deployments.values(), ...starts, ...verifications.values(), ...incidents].sort(
    (a, b) => a.timestampMs - b.timestampMs,
  );
}

/** A past event as the failed-change model takes it; a deployment's key is its sample time. */
function failureEventOf(e: PastEvent): FailureEvent | undefined {
  if (e.kind === 'deployment' && (e.status === 'success' || e.status === 'failure'))
    return {
      kind: 'deployment',
      key: String(e.timestampMs),
      at: e.at,
      status: e.status,
      rollback: e.rollback ?? false,
    };
  if (e.kind === 'verification' && e.result)
    return { kind: 'verification', result: e.result, startedAt: e.startedAt ?? e.at, finishedAt: e.at };
  if (e.kind === 'incident' && e.incident !== undefined && e.action)
    return {
      kind: 'incident',
      incident: e.incident,
      action: e.action,
      at: e.at,
      ...(e.window !== undefined && { window: e.window }),
    };
  return undefined;
}

/**
 * What the group remembers for failed changes, rebuilt from its past events in time order: the
 * same model the Pushgateway keeps in its group, from the samples of the last HISTORY_LOOKBACK.
 */
function failureMemoryOf(history: readonly PastEvent[]): FailureMemory {
  let memory = emptyMemory();
  for (const e of [...history].sort((a, b) => a.timestampMs - b.timestampMs)) {
    const event = failureEventOf(e);
    if (event) memory = applyFailureEvent(memory, event).memory;
  }
  return memory;
}

/**
 * The samples of failed changes, recoveries and rework that one event makes. A failed change and
 * a rework are stamped at their deployment's own sample time (its key); a recovery at its own
 * time, on a millisecond chosen by the deployment it recovers: the same fact found by two
 * machines is the same sample.
 */
function failureSamples(group: Record<string, string>, outcome: FailureOutcome): TimeSeries[] {
  const out: TimeSeries[] = [];
  for (const change of outcome.failedChanges)
    out.push(series(LEDGER.failedChange, { ...group, reason: change.reason }, change.at, Number(change.deployment)));
  const taken = new Set<number>();
  for (const recovery of outcome.recoveries) {
    let t = sampleTimeMs(recovery.at, `recovery:${recovery.deployment}`);
    while (taken.has(t)) t += 1;
    taken.add(t);
    out.push(series(LEDGER.failedRecovery, group, recovery.seconds, t));
  }
  for (const rework of outcome.rework) out.push(series(LEDGER.rework, group, rework.at, Number(rework.deployment)));
  return out;
}

function failureFacts(outcome: FailureOutcome, key?: string): Partial<Ledger> {
  return {
    ...(outcome.failedChanges.length > 0 && {
      failedChanges: outcome.failedChanges.map(({ reason, at }) => ({ reason, at })),
    }),
    ...(outcome.recoveries.length > 0 && { recoverySeconds: outcome.recoveries.map((r) => r.seconds) }),
    ...(key !== undefined && outcome.rework.some((r) => r.deployment === key) && { rework: true }),
  };
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
  if (record.kind === 'verification') return verificationLedger(group, record, history);
  if (record.kind === 'incident') return incidentLedger(group, record, history);
  return deploymentLedger(group, record, history);
}

function verificationLedger(
  group: Record<string, string>,
  record: VerificationRecord,
  history: readonly PastEvent[],
): Ledger {
  const t = sampleTimeMs(record.finishedAt, record.id);
  const outcome = applyFailureEvent(failureMemoryOf(history), verificationEvent(record));
  return {
    series: [
      series(LEDGER.verification, { ...group, result: record.result }, record.finishedAt, t),
      series(LEDGER.verificationStarted, group, record.startedAt, t),
      ...failureSamples(group, outcome),
    ],
    ...failureFacts(outcome),
    notices: [],
  };
}

function incidentLedger(group: Record<string, string>, record: IncidentRecord, history: readonly PastEvent[]): Ledger {
  const outcome = applyFailureEvent(failureMemoryOf(history), incidentEvent(record));
  if (!outcome.incident) return { series: [], notices: [incidentUnchanged(record.action)] };
  // Stamped from the incident itself, not the record: the same open or resolve sent from two
  // machines (or replayed from a payload) is one sample.
  const t = sampleTimeMs(record.at, `incident:${record.incident}:${record.action}:${record.at}`);
  const notices = outcome.unattributed ? [unattributedNotice(record.attributionWindowSeconds)] : [];
  // An open made with another window than the default carries it, for every later replay of the group.
  const window: Record<string, string> =
    record.action === 'open' && record.attributionWindowSeconds !== undefined
      ? { attribution_window: String(record.attributionWindowSeconds) }
      : {};
  return {
    series: [
      series(LEDGER.incident, { ...group, incident: record.incident, action: record.action, ...window }, record.at, t),
      ...failureSamples(group, outcome),
    ],
    ...failureFacts(outcome),
    notices,
  };
}

function incidentUnchanged(action: 'open' | 'resolve'): string {
  return action === 'open'
    ? 'this incident is open already (or was resolved after this time): nothing changed'
    : 'this incident is not open: nothing changed';
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

  let facts: Partial<Ledger> = {};
  if (record.status !== 'cancelled') {
    const key = String(t);
    // Failed changes are decided by times over everything the group holds, also after this
    // deployment (a record sent late): the same memory a gateway group keeps.
    const others = known.filter((e) => !(e.kind === 'deployment' && e.timestampMs === t));
    const outcome = applyFailureEvent(failureMemoryOf(others), {
      kind: 'deployment',
      key,
      at: record.finishedAt,
      status: record.status,
      rollback,
    });
    out.push(...failureSamples(group, outcome));
    facts = failureFacts(outcome, key);
  }
  // Every deployment the read found, those of the same second after this one's sample time too.
  const totals: Record<string, number> = { success: 0, failure: 0, cancelled: 0 };
  for (const status of [...known.filter((e) => e.kind === 'deployment').map((e) => e.status), record.status])
    if (status !== undefined) totals[status] = (totals[status] ?? 0) + 1;

  return {
    series: out,
    notices,
    ...facts,
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
  const names = [
    LEDGER.finished,
    LEDGER.version,
    LEDGER.started,
    LEDGER.ancestors,
    LEDGER.rollback,
    LEDGER.verification,
    LEDGER.verificationStarted,
    LEDGER.incident,
  ].join('|');
  return `{__name__=~"${names}", job=${JSON.stringify(grouping.job)}, service=${JSON.stringify(grouping.service)}, environment=${JSON.stringify(grouping.environment)}}[${HISTORY_LOOKBACK}]`;
}

/** The time at which the history is read: the last millisecond a record of its finish second can have. */
export function historyTimeMs(record: GroupRecord): number {
  const seconds = recordTime(record);
  // A deployment, verification or incident is judged against what came before it, and may find
  // failed changes, recoveries and rework after it (a record sent late): it reads on past its own
  // time, as far as a failure can still be recovered (a week).
  const after =
    record.kind === 'deployment' || record.kind === 'verification' || record.kind === 'incident'
      ? FAILURE_LOOKAHEAD_SECONDS
      : 0;
  return (Math.floor(seconds) + after) * 1000;
}

/**
 * How far past its own time a record reads the group's history: a week, the longest attribution
 * window an incident may carry, so a deployment sent late finds every incident attributable to it.
 */
const FAILURE_LOOKAHEAD_SECONDS = ATTRIBUTION_WINDOW_BOUNDS.max;
