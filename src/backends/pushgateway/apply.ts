import { type CommitMemory, rememberedAncestors, successfulChange } from '../../core/deployed-change.js';
import { DeployctlError } from '../../core/errors.js';
import {
  type FailedChangeReason,
  type FailureEvent,
  incidentEvent,
  unattributedNotice,
  verificationEvent,
} from '../../core/failed-change.js';
import { FAMILIES, type FamilyDefinition, MAX_DURATION_SECONDS } from '../../core/families.js';
import type { DeploymentRecord, GroupRecord, StartRecord, StepRecord } from '../../core/record.js';
import { STATUSES } from '../../core/record.js';
import { applyFailedChanges } from './failed-changes.js';
import {
  type Family,
  type GroupState,
  type HistogramFamily,
  type HistogramSeries,
  type Labels,
  type ScalarFamily,
  type ScalarSeries,
  sameLabels,
  scalarValue,
} from './model.js';

/**
 * How many record identities a group remembers, so that a record sent again is not counted twice:
 * a kept record is counted once as long as fewer than this many other records of its group
 * landed before it was sent.
 */
export const REMEMBERED_RECORDS = 100;

/**
 * How many commits a group remembers for lead time and rollbacks: deployed ones, what they brought,
 * and the running commit's recent ancestors (REMEMBERED_ANCESTORS of them).
 */
export const REMEMBERED_COMMITS = 200;

/** A record finishing more than this after it is applied is from a clock that runs ahead. */
const MAX_FUTURE_SECONDS = 5 * 60;

export interface Applied {
  /** The families that changed, each whole: what a POST to the group must carry. */
  families: Family[];
  /** The group had already applied this record: nothing is to be pushed. */
  duplicate: boolean;
  /** A failing streak that this success ended, in seconds. */
  timeToRestore?: number;
  /** Lead time of each newly deployed commit, in seconds. */
  leadTimes?: number[];
  /** A successful deployment of an ancestor of the commit the group ran. */
  rollback?: boolean;
  durationSeconds?: number;
  /** Things worth one line to the user (lead time fell back to the deployed commit alone, …). */
  notices: string[];
  /** The group's record sequence number given to this record. */
  sequence?: number;
  /** Deployments this record made failed changes. */
  failedChanges?: { reason: FailedChangeReason; at: number }[];
  /** Failed deployment recovery times this record observed. */
  recoverySeconds?: number[];
  /** This deployment is rework. */
  rework?: boolean;
}

export class GroupConflictError extends DeployctlError {
  constructor(family: string, problem: string) {
    super(
      `the gateway already holds ${family} ${problem}`,
      1,
      `another tool or an older deployctl pushed it; remove the family or the group (deployctl delete) and record again`,
    );
    this.name = 'GroupConflictError';
  }
}

function existingFamily(state: GroupState, definition: FamilyDefinition): Family | undefined {
  const existing = state.get(definition.name);
  if (existing && existing.type !== definition.type) {
    throw new GroupConflictError(
      definition.name,
      `as a ${existing.type}, but deployctl pushes it as a ${definition.type}`,
    );
  }
  const required = definition.labels ?? [];
  const odd = existing?.series.find((s) => required.some((name) => !(name in s.labels)));
  if (odd) {
    throw new GroupConflictError(
      definition.name,
      `with the labels {${Object.keys(odd.labels).join(', ')}}, but deployctl's series all have {${required.join(', ')}}`,
    );
  }
  return existing;
}

/** Copies a counter or gauge family out of the state, or starts an empty one. */
function takeScalar(state: GroupState, definition: FamilyDefinition & { type: 'counter' | 'gauge' }): ScalarFamily {
  const existing = existingFamily(state, definition) as ScalarFamily | undefined;
  const series = (existing?.series ?? []).map((s) => ({ labels: { ...s.labels }, value: s.value }));
  return { name: definition.name, help: definition.help, type: definition.type, series };
}

/** Copies a histogram family out of the state, or starts an empty one. */
function takeHistogram(state: GroupState, definition: FamilyDefinition & { type: 'histogram' }): HistogramFamily {
  const existing = existingFamily(state, definition) as HistogramFamily | undefined;
  const series = (existing?.series ?? []).map((s) => ({
    ...s,
    labels: { ...s.labels },
    buckets: s.buckets.map((b) => ({ ...b })),
  }));
  return { name: definition.name, help: definition.help, type: 'histogram', series };
}

/** The value of a gauge without labels, or undefined when the group does not hold it; a conflicting family throws. */
function gaugeValue(state: GroupState, definition: FamilyDefinition & { type: 'gauge' }): number | undefined {
  return scalarValue(existingFamily(state, definition));
}

function scalar(family: { series: ScalarSeries[] }, labels: Labels): ScalarSeries {
  let series = family.series.find((s) => sameLabels(s.labels, labels));
  if (!series) {
    series = { labels, value: 0 };
    family.series.push(series);
  }
  return series;
}

function histogramSeries(
  family: { name: string; series: HistogramSeries[] },
  bounds: readonly number[],
  labels: Labels,
): HistogramSeries {
  let series = family.series.find((s) => sameLabels(s.labels, labels));
  if (!series) {
    series = { labels, buckets: bounds.map((le) => ({ le, count: 0 })), sum: 0, count: 0 };
    family.series.push(series);
  } else if (series.buckets.length !== bounds.length || series.buckets.some((b, i) => b.le !== bounds[i])) {
    throw new GroupConflictError(
      family.name,
      `with the buckets ${series.buckets.map((b) => b.le).join(',')}, not deployctl's ${bounds.join(',')}`,
    );
  }
  return series;
}

function observe(series: HistogramSeries, value: number): void {
  for (const bucket of series.buckets) if (value <= bucket.le) bucket.count += 1;
  series.count += 1;
  series.sum += value;
}

/** Adds observations to one series of a histogram family taken from the state. */
function observeInto(
  state: GroupState,
  definition: FamilyDefinition & { type: 'histogram'; buckets: readonly number[] },
  labels: Labels,
  values: number[],
): HistogramFamily {
  const family = takeHistogram(state, definition);
  const series = histogramSeries(family, definition.buckets, labels);
  for (const value of values) observe(series, value);
  return family;
}

/** A family of one series with this value (a gauge, or a counter carried forward whole). */
function setGauge(
  definition: FamilyDefinition & { type: 'gauge' | 'counter' },
  value: number,
  labels: Labels = {},
): Family {
  return { name: definition.name, help: definition.help, type: definition.type, series: [{ labels, value }] };
}

export function alreadyApplied(state: GroupState, id: string): boolean {
  return state.get(FAMILIES.appliedRecords.name)?.series.some((s) => s.labels.record_id === id) ?? false;
}

/**
 * The group's record sequence so far, and its remembered record identities ordered by it. A group
 * written by an older deployctl has no sequence and ranked its identities by timestamps: they
 * are numbered 1..n in that order, once.
 */
function recordSequence(state: GroupState): { sequence: number; remembered: ScalarFamily } {
  const remembered = takeScalar(state, FAMILIES.appliedRecords);
  const counted = scalarValue(existingFamily(state, FAMILIES.recordsApplied));
  if (counted !== undefined) return { sequence: counted, remembered };
  remembered.series.sort((a, b) => a.value - b.value);
  for (const [i, series] of remembered.series.entries()) series.value = i + 1;
  return { sequence: remembered.series.length, remembered };
}

/** Remembers this record's identity at its sequence number, forgetting the oldest beyond REMEMBERED_RECORDS. */
function rememberRecord(remembered: ScalarFamily, id: string, sequence: number): Family {
  remembered.series.push({ labels: { record_id: id }, value: sequence });
  remembered.series.sort((a, b) => b.value - a.value);
  remembered.series.length = Math.min(remembered.series.length, REMEMBERED_RECORDS);
  return remembered;
}

/**
 * Carries the group forward by one record. Pure: the state is not changed, and `appliedAt`
 * (Unix seconds) is the only clock. A record the group has already applied changes nothing.
 * Which records were applied is decided by the group's own record sequence, never by a clock.
 */
export function applyRecord(state: GroupState, record: GroupRecord, appliedAt: number): Applied {
  if (alreadyApplied(state, record.id)) return { families: [], duplicate: true, notices: [] };
  const { sequence: previous, remembered } = recordSequence(state);
  const sequence = previous + 1;
  const applied =
    record.kind === 'deployment'
      ? applyDeployment(state, record, sequence, appliedAt)
      : record.kind === 'start'
        ? applyStart(state, record)
        : record.kind === 'step'
          ? applyStep(state, record)
          : { families: [], duplicate: false, notices: [] };
  if (applied.duplicate) return applied;
  const event = failureEvent(record, applied.rollback ?? false);
  if (event) withFailedChanges(state, event, applied, record.kind === 'deployment' ? record.id : undefined);
  applied.families.push(rememberRecord(remembered, record.id, sequence), setGauge(FAMILIES.recordsApplied, sequence));
  applied.sequence = sequence;
  return applied;
}

/** What a record says of failed changes: a deployment (success or failure), a verification, an incident. */
function failureEvent(record: GroupRecord, rollback: boolean): FailureEvent | undefined {
  if (record.kind === 'deployment')
    return record.status === 'cancelled'
      ? undefined
      : { kind: 'deployment', key: record.id, at: record.finishedAt, status: record.status, rollback };
  if (record.kind === 'verification') return verificationEvent(record);
  if (record.kind === 'incident') return incidentEvent(record);
  return undefined;
}

function withFailedChanges(state: GroupState, event: FailureEvent, applied: Applied, key: string | undefined): void {
  const { families, outcome } = applyFailedChanges(state, event, {
    scalar: (definition) => takeScalar(state, definition),
    observe: (values) => observeInto(state, FAMILIES.failedRecovery, {}, values),
  });
  applied.families.push(...families);
  if (event.kind === 'incident' && !outcome.incident)
    applied.notices.push(
      event.action === 'open'
        ? 'this incident is open already (or was resolved after this time): nothing changed'
        : 'this incident is not open: nothing changed',
    );
  if (event.kind === 'incident' && outcome.unattributed) applied.notices.push(unattributedNotice(event.window));
  if (outcome.failedChanges.length > 0)
    applied.failedChanges = outcome.failedChanges.map(({ reason, at }) => ({ reason, at }));
  if (outcome.recoveries.length > 0) applied.recoverySeconds = outcome.recoveries.map((r) => r.seconds);
  if (key !== undefined && outcome.rework.some((r) => r.deployment === key)) applied.rework = true;
}

/** A record stored earlier without a read-back, and the sequence number it was stored at. */
export interface StoredRecord {
  id: string;
  sequence: number;
}

/**
 * What a read of the group says of a record stored earlier without a read-back: `held` (it is
 * there); `replaced` (the group went on past its sequence, remembers that far back, and lacks it:
 * another machine wrote over it, so it must be applied again); `unknown` (the group is behind its
 * sequence — deleted, or a gateway that lost it — or has forgotten that far back: applying it again
 * could count it twice, so it is not).
 */
export function confirmation(state: GroupState, stored: StoredRecord): 'held' | 'replaced' | 'unknown' {
  if (alreadyApplied(state, stored.id)) return 'held';
  const current = scalarValue(state.get(FAMILIES.recordsApplied.name));
  const remembered =
    (state.get(FAMILIES.appliedRecords.name) as ScalarFamily | undefined)?.series.map((s) => s.value) ?? [];
  if (current === undefined || current < stored.sequence) return 'unknown';
  if (remembered.length === 0 || Math.min(...remembered) > stored.sequence) return 'unknown';
  return 'replaced';
}

/** The deployments counter with every status present (from 0), so that increase() sees a group's first failure. */
function deploymentsCounter(state: GroupState, labels: Labels): ScalarFamily {
  const deployments = takeScalar(state, FAMILIES.deployments);
  for (const status of STATUSES) scalar(deployments, { status, ...labels });
  return deployments;
}

const isoTime = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');

/**
 * A start while another deployment is in progress replaces it: the replaced one is counted as
 * cancelled (it never finished), and the new one is in progress.
 */
function applyStart(state: GroupState, record: StartRecord): Applied {
  const families: Family[] = [setGauge(FAMILIES.inProgress, 1), setGauge(FAMILIES.startedAt, record.startedAt)];
  const notices: string[] = [];
  const previousStart = gaugeValue(state, FAMILIES.startedAt) ?? 0;
  if (gaugeValue(state, FAMILIES.inProgress) === 1 && previousStart > 0) {
    const deployments = deploymentsCounter(state, record.labels ?? {});
    scalar(deployments, { status: 'cancelled', ...record.labels }).value += 1;
    families.push(deployments);
    notices.push(
      `a deployment started at ${isoTime(previousStart)} was still in progress: it is counted as cancelled, and this one replaces it`,
    );
  }
  return { families, duplicate: false, notices };
}

function applyStep(state: GroupState, record: StepRecord): Applied {
  return {
    families: [
      observeInto(state, FAMILIES.stepDuration, { step: record.step, status: record.status }, [record.durationSeconds]),
    ],
    duplicate: false,
    durationSeconds: record.durationSeconds,
    notices: [],
  };
}

function applyDeployment(state: GroupState, record: DeploymentRecord, sequence: number, appliedAt: number): Applied {
  const families: Family[] = [];
  const notices: string[] = [];
  const inProgress = gaugeValue(state, FAMILIES.inProgress) === 1;

  if (record.closesStart && !inProgress) {
    return {
      families: [],
      duplicate: true,
      notices: [
        'nothing is in progress for this group (finish already ran, or start was not recorded on this gateway): this finish is not counted; ' +
          'to record a deployment after the fact, use deployctl record',
      ],
    };
  }

  const deployments = deploymentsCounter(state, record.labels);
  scalar(deployments, { status: record.status, ...record.labels }).value += 1;
  families.push(deployments);

  const startedAt = gaugeValue(state, FAMILIES.startedAt) ?? 0;
  let durationSeconds = record.durationSeconds;
  if (durationSeconds === undefined && record.durationFromGatewayStart) {
    const fromStart = record.finishedAt - startedAt;
    if (startedAt > 0 && fromStart >= 0 && fromStart <= MAX_DURATION_SECONDS) durationSeconds = fromStart;
    else if (startedAt > 0)
      notices.push(
        `the start on the gateway (${isoTime(startedAt)}) does not fit this finish (${isoTime(record.finishedAt)}): no duration observed`,
      );
    else
      notices.push(
        'no start of this deployment is known (deployctl start was not run, or on another gateway): no duration observed',
      );
  }
  if (durationSeconds !== undefined) {
    families.push(
      observeInto(state, FAMILIES.deploymentDuration, { status: record.status, ...record.labels }, [durationSeconds]),
    );
  }
  // Every deployment ends what was in progress: 0 also for a group never marked (a quick `run`, a `record`).
  families.push(setGauge(FAMILIES.inProgress, 0));
  if (gaugeValue(state, FAMILIES.startedAt) !== undefined || startedAt > 0)
    families.push(setGauge(FAMILIES.startedAt, 0));

  // A record sent late (from the outbox) never moves "the last deployment" back in time, and one
  // from a clock that runs ahead never freezes it in the future.
  const fromTheFuture = record.finishedAt > appliedAt + MAX_FUTURE_SECONDS;
  if (fromTheFuture) {
    notices.push(
      `this deployment finished at ${isoTime(record.finishedAt)}, after now (${isoTime(appliedAt)}): counted, but not shown as the last deployment`,
    );
  }
  const isLatest = !fromTheFuture && record.finishedAt >= (gaugeValue(state, FAMILIES.lastDeployment) ?? 0);
  if (isLatest) {
    families.push(
      setGauge(FAMILIES.lastDeployment, record.finishedAt),
      setGauge(FAMILIES.info, 1, {
        version: record.version,
        commit: record.commit,
        status: record.status,
        ...record.labels,
      }),
      // Unknown is NaN, never the previous deployment's duration.
      setGauge(FAMILIES.lastDuration, durationSeconds ?? Number.NaN),
    );
    if (record.source) {
      const { ci, branch, repository, buildUrl } = record.source;
      families.push(setGauge(FAMILIES.sourceInfo, 1, { ci, branch, repository, build_url: buildUrl }));
    }
  }
  if (
    record.status === 'failure' &&
    !fromTheFuture &&
    record.finishedAt >= (gaugeValue(state, FAMILIES.lastFailure) ?? 0)
  ) {
    families.push(setGauge(FAMILIES.lastFailure, record.finishedAt));
  }

  const rollbacks = takeScalar(state, FAMILIES.rollbacks);
  const rollbackSeries = scalar(rollbacks, {});
  families.push(rollbacks);

  let leadTimes: number[] | undefined;
  let rollback = false;
  if (record.status === 'success') {
    const isLatestSuccess = !fromTheFuture && record.finishedAt >= (gaugeValue(state, FAMILIES.lastSuccess) ?? 0);
    const change = changeOf(state, record, sequence, isLatestSuccess);
    rollback = change.rollback;
    if (rollback) rollbackSeries.value += 1;
    notices.push(...change.notices);
    if (change.deployedCommits.series.length > 0) families.push(change.deployedCommits);
    if (change.leadTimes.length > 0) {
      leadTimes = change.leadTimes;
      families.push(observeInto(state, FAMILIES.leadTime, {}, change.leadTimes));
    }
    if (isLatestSuccess) {
      families.push(
        setGauge(FAMILIES.lastSuccess, record.finishedAt),
        setGauge(FAMILIES.lastSuccessInfo, 1, { version: record.version, commit: record.commit }),
      );
    }
  }

  const restore = applyRestore(state, record);
  families.push(...restore.families);

  return {
    families,
    duplicate: false,
    notices,
    ...(durationSeconds !== undefined && { durationSeconds }),
    ...(leadTimes && { leadTimes }),
    ...(rollback && { rollback }),
    ...(restore.timeToRestore !== undefined && { timeToRestore: restore.timeToRestore }),
  };
}

/** The commit of the last successful deployment the group knows of: the commit it runs now. */
function runningCommit(state: GroupState): string | undefined {
  const fromSuccess = (state.get(FAMILIES.lastSuccessInfo.name) as ScalarFamily | undefined)?.series[0]?.labels.commit;
  if (fromSuccess) return fromSuccess;
  const info = (state.get(FAMILIES.info.name) as ScalarFamily | undefined)?.series[0]?.labels;
  return info?.status === 'success' && info.commit ? info.commit : undefined;
}

/** The commits the group remembers as deployed, each with the record sequence that last ran it or a descendant. */
function deployedCommits(state: GroupState): Map<string, number> {
  const family = existingFamily(state, FAMILIES.deployedCommits) as ScalarFamily | undefined;
  return new Map((family?.series ?? []).map((s) => [s.labels.commit ?? '', s.value]));
}

interface Change {
  rollback: boolean;
  leadTimes: number[];
  deployedCommits: ScalarFamily;
  notices: string[];
}

/**
 * What a successful deployment changes: whether it is a rollback, the lead time of each commit it
 * brings for the first time, and the group's memory of deployed commits.
 *
 * The memory holds each deployed commit and every commit a deployment brought, with the sequence
 * of the last successful deployment that ran it or one of its descendants. So the commits whose
 * sequence equals that of the running commit are the running commit's ancestors the group knows
 * of: deploying one of them is a rollback. That answer is frozen into the group at each
 * successful deployment, from the history the record carries, so applying a record needs no git.
 */
function changeOf(state: GroupState, record: DeploymentRecord, sequence: number, isLatestSuccess: boolean): Change {
  const known = deployedCommits(state);
  const running = runningCommit(state);
  const deployed = record.commit;
  // A group written before deployctl remembered deployed commits knows only the running one.
  const memory: CommitMemory = {
    has: (sha) => known.has(sha) || sha === running,
    empty: known.size === 0 && running === undefined,
    running,
    runs: (sha) => running !== undefined && known.has(sha) && known.get(sha) === known.get(running),
  };
  // A late success (an older finish) came before the running commit: it rolls nothing back.
  const change = successfulChange(record, memory, { latest: isLatestSuccess });
  const { rollback, notices } = change;
  const brought = change.commits;

  // Most recent first; within one sequence the deployed commit, then what it brought, newest first.
  // A success that arrives late (an older finish, from the outbox) adds what it brought but does
  // not make its commit the running one.
  const next = new Map<string, number>();
  if (deployed && (isLatestSuccess || !known.has(deployed))) next.set(deployed, sequence);
  for (const commit of brought) next.set(commit.sha, sequence);
  if (isLatestSuccess) {
    // The history holds the deployed commit's ancestors: the recent ones, and every remembered
    // one, are the running commit's now (so a rollback to one is known from the first deployment on).
    for (const sha of rememberedAncestors(record)) next.set(sha, sequence);
    for (const commit of record.history ?? []) if (known.has(commit.sha)) next.set(commit.sha, sequence);
  }
  for (const [sha, value] of [...known].sort((a, b) => b[1] - a[1])) if (!next.has(sha)) next.set(sha, value);
  const series = [...next]
    .sort((a, b) => b[1] - a[1])
    .slice(0, REMEMBERED_COMMITS)
    .map(([commit, value]) => ({ labels: { commit }, value }));

  return {
    rollback,
    leadTimes: change.seconds,
    deployedCommits: {
      name: FAMILIES.deployedCommits.name,
      help: FAMILIES.deployedCommits.help,
      type: 'gauge',
      series,
    },
    notices,
  };
}

/**
 * Time to restore: a failure opens a streak (its finish time is kept in the group), a success
 * closes it with one observation. Cancelled deployments neither open nor close a streak.
 */
function applyRestore(state: GroupState, record: DeploymentRecord): { families: Family[]; timeToRestore?: number } {
  const known = gaugeValue(state, FAMILIES.failingSince);
  const streakStart = known ?? 0;
  // Records can arrive out of order (a kept backlog sent after a newer record): a streak is the
  // failures after the last success, by finish time, whatever the order they were applied in.
  const lastSuccess = gaugeValue(state, FAMILIES.lastSuccess) ?? 0;
  if (
    record.status === 'failure' &&
    record.finishedAt >= lastSuccess &&
    (streakStart === 0 || record.finishedAt < streakStart)
  ) {
    return { families: [setGauge(FAMILIES.failingSince, record.finishedAt)] };
  }
  if (record.status === 'success' && streakStart > 0 && record.finishedAt >= streakStart) {
    const timeToRestore = Math.max(0, record.finishedAt - streakStart);
    return {
      families: [observeInto(state, FAMILIES.timeToRestore, {}, [timeToRestore]), setGauge(FAMILIES.failingSince, 0)],
      timeToRestore,
    };
  }
  // 0 when no streak is open, from the group's first deployment on.
  return { families: known === undefined ? [setGauge(FAMILIES.failingSince, 0)] : [] };
}
