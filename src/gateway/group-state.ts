import { DeployctlError } from '../errors.js';
import type { Family, GroupState, HistogramSeries, Labels, MetricType, ScalarSeries } from '../metrics/model.js';

/** The grouping key of one deployment target. */
export interface Grouping {
  job: string;
  service: string;
  environment: string;
}

interface ApiSeries {
  labels: Labels;
  value?: string;
  buckets?: Record<string, string>;
  sum?: string;
  count?: string;
}

interface ApiFamily {
  type: string;
  help?: string;
  metrics: ApiSeries[];
}

const GATEWAY_FAMILIES = new Set(['push_time_seconds', 'push_failure_time_seconds']);

function groupingLabels(grouping: Grouping): Labels {
  return { job: grouping.job, service: grouping.service, environment: grouping.environment };
}

function matchesGroup(labels: Labels, grouping: Grouping): boolean {
  const expected = groupingLabels(grouping);
  const names = Object.keys(labels);
  return names.length === 3 && names.every((name) => labels[name] === expected[name as keyof Labels]);
}

function ownLabels(labels: Labels, grouping: Labels): Labels {
  const own: Labels = {};
  for (const [name, value] of Object.entries(labels)) {
    if (name in grouping) continue;
    // The gateway adds an empty instance label to every series it serves.
    if (name === 'instance' && value === '') continue;
    own[name] = value;
  }
  return own;
}

function toNumber(text: string | undefined): number {
  const value = Number(text);
  return Number.isNaN(value) ? 0 : value;
}

function toFamily(name: string, apiFamily: ApiFamily, grouping: Labels): Family {
  const type = apiFamily.type.toLowerCase() as MetricType;
  const help = apiFamily.help ?? '';
  if (type === 'histogram') {
    const series: HistogramSeries[] = apiFamily.metrics.map((metric) => ({
      labels: ownLabels(metric.labels, grouping),
      buckets: Object.entries(metric.buckets ?? {})
        .filter(([le]) => le !== '+Inf')
        .map(([le, count]) => ({ le: Number(le), count: toNumber(count) }))
        .sort((a, b) => a.le - b.le),
      sum: toNumber(metric.sum),
      count: toNumber(metric.count),
    }));
    return { name, help, type, series };
  }
  if (type === 'counter' || type === 'gauge') {
    const series: ScalarSeries[] = apiFamily.metrics.map((metric) => ({
      labels: ownLabels(metric.labels, grouping),
      value: toNumber(metric.value),
    }));
    return { name, help, type, series };
  }
  return { name, help, type: type === 'summary' ? 'summary' : 'untyped', series: [] };
}

export interface GroupEntry {
  labels: Labels;
  state: GroupState;
}

function parseAnswer(body: string): Record<string, unknown>[] {
  let parsed: { status?: string; data?: Record<string, unknown>[] };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    throw new DeployctlError('the gateway answered /api/v1/metrics with something that is not JSON', 1, 'is --pushgateway the address of a Prometheus Pushgateway?');
  }
  if (!Array.isArray(parsed.data)) {
    throw new DeployctlError('the gateway answered /api/v1/metrics without a list of groups', 1, 'is --pushgateway the address of a Prometheus Pushgateway?');
  }
  return parsed.data;
}

function toState(group: Record<string, unknown>, labels: Labels): GroupState {
  const state: GroupState = new Map();
  for (const [name, value] of Object.entries(group)) {
    if (name === 'labels' || name === 'last_push_successful' || GATEWAY_FAMILIES.has(name)) continue;
    state.set(name, toFamily(name, value as ApiFamily, labels));
  }
  return state;
}

/** Every group the gateway holds, with its grouping labels. */
export function parseAllGroups(body: string): GroupEntry[] {
  return parseAnswer(body).map((group) => {
    const labels = (group.labels ?? {}) as Labels;
    return { labels, state: toState(group, labels) };
  });
}

/**
 * Finds one group in the gateway's `GET /api/v1/metrics` answer and returns its families.
 * A group that is not there yet is an empty state.
 */
export function parseGroupState(body: string, grouping: Grouping): GroupState {
  const group = parseAnswer(body).find((entry) => matchesGroup((entry.labels ?? {}) as Labels, grouping));
  return group ? toState(group, groupingLabels(grouping)) : new Map();
}
