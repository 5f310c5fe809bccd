import { DeployctlError } from '../errors.js';
import type { Status } from '../validate.js';
import { STATUSES } from '../validate.js';
import { FAMILIES, type FamilyDefinition } from './families.js';
import { newlyDeployedCommits, type CommitNode } from './lead-time.js';
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

/** Where a deployment came from, as CI or git tell it. */
export interface DeploymentSource {
  ci: string;
  branch: string;
  repository: string;
  buildUrl: string;
}

/** One finished deployment, as it is kept in the outbox and applied to its group. */
export interface DeploymentRecord {
  kind: 'deployment';
  id: string;
  status: Status;
  /** Unix seconds. */
  finishedAt: number;
  durationSeconds?: number;
  /** Take the duration from the start that `deployctl start` left on the gateway. */
  durationFromGatewayStart?: boolean;
  version: string;
  commit: string;
  /** Extra labels from --label, on the counter, the duration histogram and the info metric. */
  labels: Labels;
  source?: DeploymentSource;
  /** The deployed commit and its ancestors (newest first, bounded), for lead time. */
  history?: CommitNode[];
  /** --commit-time: the deployed commit's time, overriding git (Unix seconds). */
  commitTime?: number;
}

/** `deployctl start`: a deployment is in progress. */
export interface StartRecord {
  kind: 'start';
  id: string;
  startedAt: number;
}

/** `deployctl step`: one timed step of a deployment. */
export interface StepRecord {
  kind: 'step';
  id: string;
  step: string;
  status: Status;
  finishedAt: number;
  durationSeconds: number;
}

export type GroupRecord = DeploymentRecord | StartRecord | StepRecord;

export interface Applied {
  /** The families that changed, each whole: what a POST to the group must carry. */
  families: Family[];
  /** The group had already applied this record: nothing is to be pushed. */
  duplicate: boolean;
  /** A failing streak that this success ended, in seconds. */
  timeToRestore?: number;
  /** Lead time of each newly deployed commit, in seconds. */
  leadTimes?: number[];
  durationSeconds?: number;
  /** Things worth one line to the user (lead time fell back to the deployed commit alone, …). */
  notices: string[];
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
  const required = definition.labels ?? [];
  const odd = existing?.series.find((s) => required.some((name) => !(name in s.labels)));
  if (odd) {
    throw new GroupConflictError(definition.name, `with the labels {${Object.keys(odd.labels).join(', ')}}, but deployctl's series all have {${required.join(', ')}}`);
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

/** The value of a gauge without labels, or undefined when the group does not hold it. */
function gaugeValue(state: GroupState, definition: FamilyDefinition & { type: 'gauge' }): number | undefined {
  return (existingFamily(state, definition) as ScalarFamily | undefined)?.series[0]?.value;
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

function observe(series: HistogramSeries, value: number): void {
  for (const bucket of series.buckets) if (value <= bucket.le) bucket.count += 1;
  series.count += 1;
  series.sum += value;
}

/** Adds observations to one series of a histogram family taken from the state. */
function observeInto(state: GroupState, definition: FamilyDefinition & { type: 'histogram'; buckets: readonly number[] }, labels: Labels, values: number[]): HistogramFamily {
  const family = takeHistogram(state, definition);
  const series = histogramSeries(family, definition.buckets, labels);
  for (const value of values) observe(series, value);
  return family;
}

function setGauge(definition: FamilyDefinition & { type: 'gauge' }, value: number, labels: Labels = {}): Family {
  return { name: definition.name, help: definition.help, type: 'gauge', series: [{ labels, value }] };
}

export function alreadyApplied(state: GroupState, id: string): boolean {
  return state.get(FAMILIES.appliedRecords.name)?.series.some((s) => s.labels.record_id === id) ?? false;
}

/** Remembers this record's identity, forgetting the oldest beyond REMEMBERED_RECORDS. */
function rememberRecord(state: GroupState, id: string, appliedAt: number): Family {
  const family = takeScalar(state, FAMILIES.appliedRecords);
  family.series.push({ labels: { record_id: id }, value: appliedAt });
  family.series.sort((a, b) => b.value - a.value);
  family.series.length = Math.min(family.series.length, REMEMBERED_RECORDS);
  return family;
}

/**
 * Carries the group forward by one record. Pure: the state is not changed, and `appliedAt`
 * (Unix seconds) is the only clock. A record the group has already applied changes nothing.
 */
export function applyRecord(state: GroupState, record: GroupRecord, appliedAt: number): Applied {
  if (alreadyApplied(state, record.id)) return { families: [], duplicate: true, notices: [] };
  const applied =
    record.kind === 'deployment' ? applyDeployment(state, record) : record.kind === 'start' ? applyStart(record) : applyStep(state, record);
  applied.families.push(rememberRecord(state, record.id, appliedAt));
  return applied;
}

function applyStart(record: StartRecord): Applied {
  return {
    families: [setGauge(FAMILIES.inProgress, 1), setGauge(FAMILIES.startedAt, record.startedAt)],
    duplicate: false,
    notices: [],
  };
}

function applyStep(state: GroupState, record: StepRecord): Applied {
  return {
    families: [observeInto(state, FAMILIES.stepDuration, { step: record.step, status: record.status }, [record.durationSeconds])],
    duplicate: false,
    durationSeconds: record.durationSeconds,
    notices: [],
  };
}

function applyDeployment(state: GroupState, record: DeploymentRecord): Applied {
  const families: Family[] = [];
  const notices: string[] = [];

  const deployments = takeScalar(state, FAMILIES.deployments);
  // Every status starts at 0, so that increase() sees the first failure of a group that had successes.
  for (const status of STATUSES) scalar(deployments, { status, ...record.labels });
  scalar(deployments, { status: record.status, ...record.labels }).value += 1;
  families.push(deployments);

  const startedAt = gaugeValue(state, FAMILIES.startedAt) ?? 0;
  let durationSeconds = record.durationSeconds;
  if (durationSeconds === undefined && record.durationFromGatewayStart) {
    if (startedAt > 0 && record.finishedAt >= startedAt) durationSeconds = record.finishedAt - startedAt;
    else notices.push('no start of this deployment is known (deployctl start was not run, or on another gateway): no duration observed');
  }
  if (durationSeconds !== undefined) {
    families.push(observeInto(state, FAMILIES.deploymentDuration, { status: record.status, ...record.labels }, [durationSeconds]));
  }
  if (gaugeValue(state, FAMILIES.inProgress) !== undefined || startedAt > 0) {
    families.push(setGauge(FAMILIES.inProgress, 0), setGauge(FAMILIES.startedAt, 0));
  }

  // A record sent late (from the outbox) never moves "the last deployment" back in time.
  const isLatest = record.finishedAt >= (gaugeValue(state, FAMILIES.lastDeployment) ?? 0);
  if (isLatest) {
    families.push(
      setGauge(FAMILIES.lastDeployment, record.finishedAt),
      setGauge(FAMILIES.info, 1, { version: record.version, commit: record.commit, status: record.status, ...record.labels }),
    );
    if (durationSeconds !== undefined) families.push(setGauge(FAMILIES.lastDuration, durationSeconds));
    if (record.source) {
      const { ci, branch, repository, buildUrl } = record.source;
      families.push(setGauge(FAMILIES.sourceInfo, 1, { ci, branch, repository, build_url: buildUrl }));
    }
  }
  if (record.status === 'failure' && record.finishedAt >= (gaugeValue(state, FAMILIES.lastFailure) ?? 0)) {
    families.push(setGauge(FAMILIES.lastFailure, record.finishedAt));
  }

  let leadTimes: number[] | undefined;
  if (record.status === 'success') {
    if (record.finishedAt >= (gaugeValue(state, FAMILIES.lastSuccess) ?? 0)) {
      families.push(
        setGauge(FAMILIES.lastSuccess, record.finishedAt),
        setGauge(FAMILIES.lastSuccessInfo, 1, { version: record.version, commit: record.commit }),
      );
    }
    const lead = leadTimesOf(state, record);
    if (lead.notice) notices.push(lead.notice);
    if (lead.seconds.length > 0) {
      leadTimes = lead.seconds;
      families.push(observeInto(state, FAMILIES.leadTime, {}, lead.seconds));
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
    ...(restore.timeToRestore !== undefined && { timeToRestore: restore.timeToRestore }),
  };
}

/** The commit of the last successful deployment the group knows of. */
export function previouslyDeployedCommit(state: GroupState): string | undefined {
  const fromSuccess = (state.get(FAMILIES.lastSuccessInfo.name) as ScalarFamily | undefined)?.series[0]?.labels.commit;
  if (fromSuccess) return fromSuccess;
  const info = (state.get(FAMILIES.info.name) as ScalarFamily | undefined)?.series[0]?.labels;
  return info?.status === 'success' && info.commit ? info.commit : undefined;
}

function leadTimesOf(state: GroupState, record: DeploymentRecord): { seconds: number[]; notice?: string } {
  if (!record.commit) return { seconds: [] };
  if (record.commitTime !== undefined) return { seconds: [Math.max(0, record.finishedAt - record.commitTime)] };
  if (!record.history) {
    return { seconds: [], notice: `commit ${record.commit.slice(0, 12)} is not in a local git history and no --commit-time was given: no lead time observed` };
  }
  const { commits, notice } = newlyDeployedCommits(record.history, record.commit, previouslyDeployedCommit(state));
  return { seconds: commits.map((c) => Math.max(0, record.finishedAt - c.time)), ...(notice && { notice }) };
}

/**
 * Time to restore: a failure opens a streak (its finish time is kept in the group), a success
 * closes it with one observation. Cancelled deployments neither open nor close a streak.
 */
function applyRestore(state: GroupState, record: DeploymentRecord): { families: Family[]; timeToRestore?: number } {
  const streakStart = gaugeValue(state, FAMILIES.failingSince) ?? 0;
  if (record.status === 'failure' && streakStart === 0) {
    return { families: [setGauge(FAMILIES.failingSince, record.finishedAt)] };
  }
  if (record.status === 'success' && streakStart > 0) {
    const timeToRestore = Math.max(0, record.finishedAt - streakStart);
    return {
      families: [observeInto(state, FAMILIES.timeToRestore, {}, [timeToRestore]), setGauge(FAMILIES.failingSince, 0)],
      timeToRestore,
    };
  }
  return { families: [] };
}
