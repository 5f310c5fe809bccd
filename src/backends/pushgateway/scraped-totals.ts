import type { Prometheus, Sample } from '../../adapters/prometheus.js';
import { FAMILIES, type FamilyDefinition } from '../../core/families.js';
import type { Grouping } from '../../core/record.js';
import { type Continued, continueTotals, loweredTotals } from './lost-totals.js';
import type { GroupState, HistogramSeries, Labels, ScalarSeries } from './model.js';

/** How far back Prometheus is asked for a group's last totals. */
export const CONTINUE_WINDOW = '31d';

const NOT_OWN = new Set(['__name__', 'job', 'service', 'environment', 'instance', 'exported_job', 'exported_instance']);

function own(labels: Labels): Labels {
  return Object.fromEntries(Object.entries(labels).filter(([name]) => !NOT_OWN.has(name)));
}

/** A PromQL selector for exactly this group. */
function groupSelector(grouping: Grouping): string {
  return `{job=${JSON.stringify(grouping.job)}, service=${JSON.stringify(grouping.service)}, environment=${JSON.stringify(grouping.environment)}}`;
}

type Scalar = FamilyDefinition & { type: 'counter' | 'gauge' };
type Histogram = FamilyDefinition & { type: 'histogram'; buckets: readonly number[] };

/** Totals only grow: the highest value seen is the last one. Gauges that are a state: the last value. */
const HIGHEST: Scalar[] = [
  FAMILIES.deployments,
  FAMILIES.rollbacks,
  FAMILIES.recordsApplied,
  FAMILIES.lastDeployment,
  FAMILIES.lastSuccess,
  FAMILIES.lastFailure,
];
const LAST: Scalar[] = [
  FAMILIES.appliedRecords,
  FAMILIES.deployedCommits,
  FAMILIES.failingSince,
  FAMILIES.inProgress,
  FAMILIES.startedAt,
];
const HISTOGRAMS: Histogram[] = [
  FAMILIES.deploymentDuration,
  FAMILIES.leadTime,
  FAMILIES.timeToRestore,
  FAMILIES.stepDuration,
];

function scalarSeries(samples: Sample[]): ScalarSeries[] {
  return samples.filter((s) => Number.isFinite(s.value)).map((s) => ({ labels: own(s.labels), value: s.value }));
}

function histogramSeries(
  definition: Histogram,
  buckets: Sample[],
  sums: Sample[],
  counts: Sample[],
): HistogramSeries[] {
  const series = new Map<string, HistogramSeries>();
  const key = (labels: Labels) =>
    JSON.stringify(
      Object.entries(own(labels))
        .filter(([name]) => name !== 'le')
        .sort(),
    );
  for (const count of counts) {
    const labels = own(count.labels);
    series.set(key(labels), {
      labels,
      buckets: definition.buckets.map((le) => ({ le, count: 0 })),
      sum: 0,
      count: count.value,
    });
  }
  for (const sum of sums) {
    const found = series.get(key(sum.labels));
    if (found) found.sum = sum.value;
  }
  for (const bucket of buckets) {
    const found = series.get(key(bucket.labels));
    const slot = found?.buckets.find((b) => b.le === Number(bucket.labels.le));
    if (slot) slot.count = bucket.value;
  }
  return [...series.values()];
}

/**
 * What Prometheus last scraped of a group's totals and memories, within CONTINUE_WINDOW, or
 * undefined when it holds nothing of the group. Counters and histograms are the highest values
 * seen (they only grow); record identities and deployed commits are every series seen.
 */
async function readScrapedGroup(prometheus: Prometheus, grouping: Grouping): Promise<GroupState | undefined> {
  const sel = groupSelector(grouping);
  const over = (fn: string, name: string) => prometheus.query(`${fn}(${name}${sel}[${CONTINUE_WINDOW}])`);
  const [highest, last, histograms] = await Promise.all([
    Promise.all(HIGHEST.map((d) => over('max_over_time', d.name))),
    Promise.all(LAST.map((d) => over('last_over_time', d.name))),
    Promise.all(
      HISTOGRAMS.map((d) =>
        Promise.all(['_bucket', '_sum', '_count'].map((suffix) => over('max_over_time', `${d.name}${suffix}`))),
      ),
    ),
  ]);
  const state: GroupState = new Map();
  [...HIGHEST, ...LAST].forEach((definition, i) => {
    const series = scalarSeries([...highest, ...last][i]!);
    if (series.length)
      state.set(definition.name, { name: definition.name, help: definition.help, type: definition.type, series });
  });
  HISTOGRAMS.forEach((definition, i) => {
    const [buckets, sums, counts] = histograms[i]!;
    const series = histogramSeries(definition, buckets!, sums!, counts!);
    if (series.length)
      state.set(definition.name, { name: definition.name, help: definition.help, type: 'histogram', series });
  });
  return state.size ? state : undefined;
}

/**
 * The group as it should continue: when its totals on the gateway are missing or below what
 * Prometheus last scraped, continued from Prometheus (see continueTotals). A first, small query
 * (the deployments and records counters) tells whether anything was lost; only then is the rest read.
 */
async function continueFromPrometheus(
  prometheus: Prometheus,
  grouping: Grouping,
  onGateway: GroupState,
): Promise<Continued> {
  const sel = groupSelector(grouping);
  const probe: GroupState = new Map();
  const counters = [FAMILIES.deployments, FAMILIES.recordsApplied];
  const answers = await Promise.all(
    counters.map((d) => prometheus.query(`max_over_time(${d.name}${sel}[${CONTINUE_WINDOW}])`)),
  );
  counters.forEach((definition, i) => {
    const series = scalarSeries(answers[i]!);
    if (series.length)
      probe.set(definition.name, { name: definition.name, help: definition.help, type: definition.type, series });
  });
  if (loweredTotals(onGateway, probe).length === 0) return { state: onGateway, lowered: [], changed: [] };
  const scraped = await readScrapedGroup(prometheus, grouping);
  return scraped ? continueTotals(onGateway, scraped) : { state: onGateway, lowered: [], changed: [] };
}

export type Continuation = (grouping: Grouping, onGateway: GroupState) => Promise<Continued>;

/**
 * The continuation for deliveries when a Prometheus is known (--prometheus, DEPLOYCTL_PROMETHEUS_URL, the one
 * `dora` uses). Prometheus failing never stops a record: the gateway's state is used, and the
 * problem is said.
 */
export function prometheusContinuation(url: string | undefined, timeoutMs: number): Continuation | undefined {
  if (!url) return undefined;
  return async (grouping, onGateway) => {
    try {
      const { Prometheus } = await import('../../adapters/prometheus.js');
      return await continueFromPrometheus(new Prometheus(url, timeoutMs), grouping, onGateway);
    } catch (error) {
      return { state: onGateway, lowered: [], changed: [], problem: (error as Error).message };
    }
  };
}
