import {
  applyFailureEvent,
  FAILED_CHANGE_REASONS,
  type FailedChangeReason,
  type FailureEvent,
  type FailureMemory,
  type FailureOutcome,
  type RememberedDeployment,
  type RememberedIncident,
} from '../../core/failed-change.js';
import { FAMILIES } from '../../core/families.js';
import { VERIFICATION_RESULTS } from '../../core/record.js';
import { type Family, type GroupState, type HistogramFamily, type ScalarFamily, sameLabels } from './model.js';

/**
 * Failed changes on a gateway group: the memory (recent deployments, incidents) is kept as two
 * bookkeeping families that the example scrape job drops; the counts are ordinary families.
 */

const num = (text: string | undefined): number | undefined =>
  text === undefined || text === '' || Number.isNaN(Number(text)) ? undefined : Number(text);
const text = (value: number | undefined): string => (value === undefined ? '' : String(value));

/** What the group remembers for failed changes, from its bookkeeping families. */
export function failureMemory(state: GroupState): FailureMemory {
  const deployments = ((state.get(FAMILIES.rememberedDeployments.name) as ScalarFamily | undefined)?.series ?? [])
    .map((s): RememberedDeployment => {
      const l = s.labels;
      const reason = (FAILED_CHANGE_REASONS as readonly string[]).includes(l.reason ?? '')
        ? (l.reason as FailedChangeReason)
        : undefined;
      const knownAt = num(l.known_at);
      const recoveredAt = num(l.recovered_at);
      return {
        key: l.deployment ?? '',
        at: s.value,
        status: l.status === 'failure' ? 'failure' : 'success',
        rollback: l.rollback === 'true',
        rework: l.rework === 'true',
        ...(reason && { reason }),
        ...(knownAt !== undefined && { knownAt }),
        ...(recoveredAt !== undefined && { recoveredAt }),
      };
    })
    .sort((a, b) => a.at - b.at);
  const incidents = ((state.get(FAMILIES.rememberedIncidents.name) as ScalarFamily | undefined)?.series ?? []).map(
    (s): RememberedIncident => {
      const resolvedAt = num(s.labels.resolved_at);
      return {
        incident: s.labels.incident ?? '',
        openedAt: s.value,
        ...(resolvedAt !== undefined && { resolvedAt }),
        ...(s.labels.deployment && { deployment: s.labels.deployment }),
        ...(num(s.labels.window) !== undefined && { window: num(s.labels.window) }),
      };
    },
  );
  return {
    deployments,
    open: incidents.filter((i) => i.resolvedAt === undefined).sort((a, b) => a.openedAt - b.openedAt),
    resolved: incidents.filter((i) => i.resolvedAt !== undefined).sort((a, b) => a.resolvedAt! - b.resolvedAt!),
  };
}

function memoryFamilies(memory: FailureMemory): Family[] {
  const deployments: ScalarFamily = {
    name: FAMILIES.rememberedDeployments.name,
    help: FAMILIES.rememberedDeployments.help,
    type: 'gauge',
    series: memory.deployments.map((d) => ({
      labels: {
        deployment: d.key,
        status: d.status,
        rollback: String(d.rollback),
        reason: d.reason ?? '',
        known_at: text(d.knownAt),
        recovered_at: text(d.recoveredAt),
        rework: String(d.rework),
      },
      value: d.at,
    })),
  };
  const incidents: ScalarFamily = {
    name: FAMILIES.rememberedIncidents.name,
    help: FAMILIES.rememberedIncidents.help,
    type: 'gauge',
    series: [...memory.open, ...memory.resolved].map((i) => ({
      labels: {
        incident: i.incident,
        resolved_at: text(i.resolvedAt),
        deployment: i.deployment ?? '',
        window: text(i.window),
      },
      value: i.openedAt,
    })),
  };
  return [deployments, incidents];
}

/** Helpers of apply.ts that take a family out of the state (checking it), passed in to avoid a cycle. */
export interface Takers {
  scalar(definition: (typeof FAMILIES)[keyof typeof FAMILIES] & { type: 'counter' | 'gauge' }): ScalarFamily;
  observe(values: number[]): HistogramFamily;
}

function counter(family: ScalarFamily, labels: Record<string, string>): { value: number } {
  let series = family.series.find((s) => sameLabels(s.labels, labels));
  if (!series) {
    series = { labels, value: 0 };
    family.series.push(series);
  }
  return series;
}

export interface FailedChangesApplied {
  families: Family[];
  outcome: FailureOutcome;
}

/**
 * One event against the group's memory: the failed changes, recoveries and rework it makes, with
 * every count present from 0, and the memory written back.
 */
export function applyFailedChanges(state: GroupState, event: FailureEvent, take: Takers): FailedChangesApplied {
  const outcome = applyFailureEvent(failureMemory(state), event);
  const failed = take.scalar(FAMILIES.failedChanges);
  for (const reason of FAILED_CHANGE_REASONS) counter(failed, { reason });
  for (const change of outcome.failedChanges) counter(failed, { reason: change.reason }).value += 1;
  const rework = take.scalar(FAMILIES.rework);
  counter(rework, {}).value += outcome.rework.length;
  const verifications = take.scalar(FAMILIES.verifications);
  for (const result of VERIFICATION_RESULTS) counter(verifications, { result });
  if (event.kind === 'verification') counter(verifications, { result: event.result }).value += 1;
  const incidents = take.scalar(FAMILIES.incidents);
  if (outcome.incident === 'open') counter(incidents, {}).value += 1;
  else counter(incidents, {});
  const open: ScalarFamily = {
    name: FAMILIES.openIncidents.name,
    help: FAMILIES.openIncidents.help,
    type: 'gauge',
    series: [{ labels: {}, value: outcome.memory.open.length }],
  };
  const families: Family[] = [
    failed,
    rework,
    verifications,
    incidents,
    open,
    take.observe(outcome.recoveries.map((r) => r.seconds)),
    ...memoryFamilies(outcome.memory),
  ];
  if (event.kind === 'verification') {
    const last = take.scalar(FAMILIES.lastVerification);
    if (last.series.length === 0 || event.finishedAt >= last.series[0]!.value)
      families.push({ ...last, series: [{ labels: { result: event.result }, value: event.finishedAt }] });
  }
  if (event.kind === 'incident' && outcome.incident === 'open') {
    const last = take.scalar(FAMILIES.lastIncident);
    if (last.series.length === 0 || event.at >= last.series[0]!.value)
      families.push({ ...last, series: [{ labels: {}, value: event.at }] });
  }
  return { families, outcome };
}
