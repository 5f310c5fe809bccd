import { DeployctlError } from '../errors.js';
import type { Status } from '../validate.js';
import { STATUSES } from '../validate.js';
import { FAMILIES, type FamilyDefinition } from './families.js';
import {
  sameLabels,
  type Family,
  type GroupState,
  type HistogramFamily,
  type HistogramSeries,
  type Labels,
  type ScalarFamily,
  type ScalarSeries,
} from './model.js';

/** How many record identities a group remembers, so that a record sent again is not counted twice. */
export const REMEMBERED_RECORDS = 20;

/** One finished deployment, as it is kept in the outbox and applied to its group. */
export interface DeploymentRecord {
  id: string;
  status: Status;
  /** Unix seconds. */
  finishedAt: number;
  durationSeconds?: number;
  version: string;
  commit: string;
  /** Extra labels from --label, on the counter, the duration histogram and the info metric. */
  labels: Labels;
  /** Lead time of each newly deployed commit, in seconds. */
  leadTimes?: number[];
}

export interface Applied {
  /** The families that changed, each whole: what a POST to the group must carry. */
  families: Family[];
  /** The group had already applied this record: nothing is to be pushed. */
  duplicate: boolean;
  /** A failing streak that this success ended, in seconds. */
  timeToRestore?: number;
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
    throw new GroupConflictError(definition.name, `as a ${existing.type}, but deployctl pushes it as a ${definition.type}`);
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
  const series = (existing?.series ?? []).map((s) => ({ ...s, labels: { ...s.labels }, buckets: s.buckets.map((b) => ({ ...b })) }));
  return { name: definition.name, help: definition.help, type: 'histogram', series };
}

function scalar(family: { series: ScalarSeries[] }, labels: Labels): ScalarSeries {
  let series = family.series.find((s) => sameLabels(s.labels, labels));
  if (!series) {
    series = { labels, value: 0 };
    family.series.push(series);
  }
  return series;
}

function histogramSeries(family: { name: string; series: HistogramSeries[] }, bounds: readonly number[], labels: Labels): HistogramSeries {
  let series = family.series.find((s) => sameLabels(s.labels, labels));
  if (!series) {
    series = { labels, buckets: bounds.map((le) => ({ le, count: 0 })), sum: 0, count: 0 };
    family.series.push(series);
  } else if (series.buckets.length !== bounds.length || series.buckets.some((b, i) => b.le !== bounds[i])) {
    throw new GroupConflictError(family.name, `with the buckets ${series.buckets.map((b) => b.le).join(',')}, not deployctl's ${bounds.join(',')}`);
  }
  return series;
}

export function observe(series: HistogramSeries, value: number): void {
  for (const bucket of series.buckets) if (value <= bucket.le) bucket.count += 1;
  series.count += 1;
  series.sum += value;
}

function setGauge(definition: FamilyDefinition & { type: 'gauge' }, value: number, labels: Labels = {}): Family {
  return { name: definition.name, help: definition.help, type: 'gauge', series: [{ labels, value }] };
}

export function alreadyApplied(state: GroupState, id: string): boolean {
  return state.get(FAMILIES.appliedRecords.name)?.series.some((s) => s.labels.record_id === id) ?? false;
}

/** Remembers this record's identity, forgetting the oldest beyond REMEMBERED_RECORDS. */
export function rememberRecord(state: GroupState, id: string, appliedAt: number): Family {
  const family = takeScalar(state, FAMILIES.appliedRecords);
  family.series.push({ labels: { record_id: id }, value: appliedAt });
  family.series.sort((a, b) => b.value - a.value);
  family.series.length = Math.min(family.series.length, REMEMBERED_RECORDS);
  return family;
}

/**
 * Carries the group's totals forward by one finished deployment. Pure: the state is not changed,
 * and `appliedAt` (Unix seconds) is the only clock.
 */
export function applyDeployment(state: GroupState, record: DeploymentRecord, appliedAt: number): Applied {
  if (alreadyApplied(state, record.id)) return { families: [], duplicate: true };
  const families: Family[] = [];

  const deployments = takeScalar(state, FAMILIES.deployments);
  // Every status starts at 0, so that increase() sees the first failure of a group that had successes.
  for (const status of STATUSES) scalar(deployments, { status, ...record.labels });
  scalar(deployments, { status: record.status, ...record.labels }).value += 1;
  families.push(deployments);

  if (record.durationSeconds !== undefined) {
    const duration = takeHistogram(state, FAMILIES.deploymentDuration);
    observe(histogramSeries(duration, FAMILIES.deploymentDuration.buckets, { status: record.status, ...record.labels }), record.durationSeconds);
    families.push(duration);
  }

  if (record.leadTimes?.length) {
    const leadTime = takeHistogram(state, FAMILIES.leadTime);
    const series = histogramSeries(leadTime, FAMILIES.leadTime.buckets, {});
    for (const seconds of record.leadTimes) observe(series, Math.max(0, seconds));
    families.push(leadTime);
  }

  // A record sent late (from the outbox) never moves "the last deployment" back in time.
  const latest = (definition: FamilyDefinition & { type: 'gauge' }) =>
    Math.max((existingFamily(state, definition) as ScalarFamily | undefined)?.series[0]?.value ?? 0, 0);
  const isLatest = record.finishedAt >= latest(FAMILIES.lastDeployment);
  if (isLatest) {
    families.push(
      setGauge(FAMILIES.lastDeployment, record.finishedAt),
      setGauge(FAMILIES.info, 1, { version: record.version, commit: record.commit, status: record.status, ...record.labels }),
    );
    if (record.durationSeconds !== undefined) families.push(setGauge(FAMILIES.lastDuration, record.durationSeconds));
  }
  if (record.status === 'success' && record.finishedAt >= latest(FAMILIES.lastSuccess)) {
    families.push(setGauge(FAMILIES.lastSuccess, record.finishedAt));
  }
  if (record.status === 'failure' && record.finishedAt >= latest(FAMILIES.lastFailure)) {
    families.push(setGauge(FAMILIES.lastFailure, record.finishedAt));
  }

  const restore = applyRestore(state, record);
  families.push(...restore.families);

  families.push(rememberRecord(state, record.id, appliedAt));
  return { families, duplicate: false, ...(restore.timeToRestore !== undefined && { timeToRestore: restore.timeToRestore }) };
}

/**
 * Time to restore: a failure opens a streak (its finish time is kept in the group), a success
 * closes it with one observation. Cancelled deployments neither open nor close a streak.
 */
function applyRestore(state: GroupState, record: DeploymentRecord): { families: Family[]; timeToRestore?: number } {
  const failingSince = existingFamily(state, FAMILIES.failingSince) as ScalarFamily | undefined;
  const streakStart = failingSince?.series[0]?.value ?? 0;
  if (record.status === 'failure' && streakStart === 0) {
    return { families: [setGauge(FAMILIES.failingSince, record.finishedAt)] };
  }
  if (record.status === 'success' && streakStart > 0) {
    const timeToRestore = Math.max(0, record.finishedAt - streakStart);
    const restore = takeHistogram(state, FAMILIES.timeToRestore);
    observe(histogramSeries(restore, FAMILIES.timeToRestore.buckets, {}), timeToRestore);
    return { families: [restore, setGauge(FAMILIES.failingSince, 0)], timeToRestore };
  }
  return { families: [] };
}
