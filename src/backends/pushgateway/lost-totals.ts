import type { Sample } from '../../adapters/prometheus.js';
import { FAMILIES, type FamilyDefinition, MAX_DURATION_SECONDS } from '../../core/families.js';
import type { Grouping } from '../../core/record.js';
import {
  type Family,
  type GroupState,
  type HistogramFamily,
  type HistogramSeries,
  type Labels,
  type ScalarFamily,
  seriesKey,
} from './model.js';

/** Families whose series are a memory (record identities, deployed commits): what Prometheus saw is added to what the gateway holds. */
const MEMORIES = new Set<string>([FAMILIES.appliedRecords.name, FAMILIES.deployedCommits.name]);

/** The highest count taken from Prometheus: no group records a billion deployments, so a value beyond is not one. */
const MAX_TOTAL = 1e9;

/** 2000-01-01: no deployment deployctl records finished earlier. */
const EARLIEST = Date.UTC(2000, 0, 1) / 1000;
/** How far ahead of now a time deployctl wrote can be (a recording machine's clock a little ahead). */
const AHEAD_SECONDS = 5 * 60;

export interface Continued {
  state: GroupState;
  /** The totals that were missing or lower on the gateway, as `family{labels}` (empty: nothing was lost). */
  lowered: string[];
  /** The families taken or merged from Prometheus: they are written back whole. */
  changed: Family[];
  /** What the user should hear: Prometheus could not be asked, or answered something that was not taken. */
  warnings: string[];
}

/** Text from a server, shown as text: quoted, with every control character escaped. */
export function quoted(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const describeSeries = (family: string, labels: Record<string, string>) =>
  `${family}${
    Object.keys(labels).length
      ? `{${Object.entries(labels)
          .map(([k, v]) => `${k}=${quoted(v)}`)
          .join(',')}}`
      : ''
  }`;

/** The totals of the gateway's group that are missing or below what Prometheus last scraped. */
export function loweredTotals(onGateway: GroupState, scraped: GroupState): string[] {
  const lowered: string[] = [];
  for (const family of scraped.values()) {
    if (family.type !== 'counter' && family.type !== 'histogram') continue;
    const held = onGateway.get(family.name);
    for (const series of family.series) {
      const match = held?.series.find((s) => seriesKey(s.labels) === seriesKey(series.labels));
      const was = 'count' in series ? series.count : series.value;
      const now = match === undefined ? undefined : 'count' in match ? match.count : match.value;
      if (now === undefined || now < was) lowered.push(describeSeries(family.name, series.labels));
    }
  }
  return lowered;
}

/**
 * Continues a group from what Prometheus last scraped of it from this gateway before the gateway
 * lost it (a restart without persistence, or from an old persistence file). Every counter and
 * histogram series takes the higher of the two (histograms whole: buckets, sum and count), so a
 * total never goes below what the gateway holds; the memories of applied records and deployed
 * commits get what Prometheus saw added; a gauge the gateway lacks is taken from Prometheus, one
 * it holds is the gateway's (newer). A group whose totals are all at least Prometheus's is left as
 * it is. Pure.
 */
export function continueTotals(onGateway: GroupState, scraped: GroupState): Continued {
  const lowered = loweredTotals(onGateway, scraped);
  if (lowered.length === 0) return { state: onGateway, lowered, changed: [], warnings: [] };
  const state: GroupState = new Map(onGateway);
  const changed: Family[] = [];
  for (const family of scraped.values()) {
    const held = onGateway.get(family.name);
    if (!held) {
      state.set(family.name, family);
      changed.push(family);
      continue;
    }
    const merges = family.type === 'counter' || family.type === 'histogram' || MEMORIES.has(family.name);
    if (!merges || held.type !== family.type) continue;
    const series = new Map<string, (typeof held.series)[number]>(held.series.map((s) => [seriesKey(s.labels), s]));
    for (const was of family.series) {
      const key = seriesKey(was.labels);
      const now = series.get(key);
      const count = (s: typeof was) => ('count' in s ? s.count : s.value);
      if (now === undefined || (!MEMORIES.has(family.name) && count(now) < count(was))) series.set(key, was);
    }
    const merged = { ...held, series: [...series.values()] } as Family as ScalarFamily | HistogramFamily;
    state.set(family.name, merged);
    changed.push(merged);
  }
  return { state, lowered, changed, warnings: [] };
}

type Scalar = FamilyDefinition & { type: 'counter' | 'gauge' };
type Histogram = FamilyDefinition & { type: 'histogram'; buckets: readonly number[] };

const DEFINITIONS = Object.values(FAMILIES) as FamilyDefinition[];
const SCALARS = new Map(
  DEFINITIONS.filter((d): d is Scalar => d.type !== 'histogram').map((d) => [d.name, d] as const),
);
const HISTOGRAM_PARTS = new Map<string, { definition: Histogram; part: 'bucket' | 'sum' | 'count' }>(
  DEFINITIONS.filter((d): d is Histogram => d.type === 'histogram').flatMap((d) =>
    (['bucket', 'sum', 'count'] as const).map((part) => [`${d.name}_${part}`, { definition: d, part }] as const),
  ),
);

const WHOLE = 'a whole number from 0 to 1e9';
const isWhole = (value: number) => Number.isInteger(value) && value >= 0 && value <= MAX_TOTAL;
const isTime = (value: number, now: number) => value === 0 || (value >= EARLIEST && value <= now + AHEAD_SECONDS);

/** Why a gauge's value is not one deployctl writes, or undefined when it could be. */
function implausibleGauge(definition: Scalar, value: number, now: number): string | undefined {
  if (MEMORIES.has(definition.name))
    return Number.isFinite(value) && value >= 0 ? undefined : 'which no record sequence can be';
  if (definition === FAMILIES.inProgress) return value === 0 || value === 1 ? undefined : 'which is neither 0 nor 1';
  if (definition === FAMILIES.lastDuration)
    return Number.isNaN(value) || (value >= 0 && value <= MAX_DURATION_SECONDS)
      ? undefined
      : 'which is no duration (from 0 to 7 days)';
  if (definition.name.endsWith('_timestamp_seconds'))
    return isTime(value, now)
      ? undefined
      : 'which is no time deployctl writes (0, or from 2000-01-01 to 5 minutes ahead)';
  if (definition.name.endsWith('_info')) return value === 1 ? undefined : 'where an info series is always 1';
  return Number.isFinite(value) ? undefined : 'which is not a finite number';
}

/** What a snapshot of a group from Prometheus is expected to be: its group, and the labels of the gateway's scrape target. */
export interface Expected {
  grouping: Grouping;
  /** Labels every series scraped from this gateway carries (its scrape target's own). */
  matchers: Labels;
  /** Unix seconds, for times that cannot be in the future. */
  now: number;
}

/** Labels that say where a series comes from, not which series of its family it is. */
const WHERE = new Set(['__name__', 'job', 'service', 'environment', 'instance']);

/** Why a series Prometheus answered is not one of this group scraped from this gateway, or undefined when it is. */
function foreign(labels: Labels, expected: Expected): string | undefined {
  if ('exported_job' in labels || 'exported_instance' in labels)
    return 'carries exported_job (Prometheus scrapes the gateway without honor_labels: its job label is the scrape job, not the one deployctl pushed)';
  const { grouping } = expected;
  if (labels.job !== grouping.job || labels.service !== grouping.service || labels.environment !== grouping.environment)
    return `is a series of another job or group (job ${quoted(labels.job ?? '')}, service ${quoted(labels.service ?? '')}, environment ${quoted(labels.environment ?? '')})`;
  const other = Object.entries(expected.matchers).find(([name, value]) => labels[name] !== value);
  if (other) return `was not scraped from this gateway (${other[0]}=${quoted(labels[other[0]] ?? '')})`;
  return undefined;
}

const formatValue = (value: number) => (Number.isNaN(value) ? 'NaN' : String(value));

/**
 * The group as Prometheus last scraped it from this gateway, from the samples of one instant query
 * (`{__name__=~"deployctl_.+", …}`), when every one of them is a plausible value of this group:
 * counts are whole numbers from 0 to MAX_TOTAL, histograms are cumulative, times are from 2000 to 5
 * minutes ahead, and every series carries this group's job, service and environment and this
 * gateway's scrape-target labels. Anything else refuses the whole snapshot, with each reason: a
 * Prometheus that answers one impossible value is trusted with none. Families deployctl does not
 * know are left out. Pure.
 */
export function snapshotState(samples: Sample[], expected: Expected): { state: GroupState; refused: string[] } {
  const refused: string[] = [];
  const scalars = new Map<string, ScalarFamily>();
  const histograms = new Map<string, { definition: Histogram; series: Map<string, HistogramSeries> }>();
  const own = (labels: Labels, drop: string[] = []) =>
    Object.fromEntries(
      Object.entries(labels).filter(
        ([name]) => !WHERE.has(name) && !(name in expected.matchers) && !drop.includes(name),
      ),
    );
  for (const sample of samples) {
    const name = sample.labels.__name__ ?? '';
    const shown = () => `${describeSeries(name, own(sample.labels))} = ${formatValue(sample.value)}`;
    const notOurs = foreign(sample.labels, expected);
    if (notOurs) {
      refused.push(`${shown()}: it ${notOurs}`);
      continue;
    }
    const scalar = SCALARS.get(name);
    if (scalar) {
      const why =
        scalar.type === 'counter'
          ? isWhole(sample.value)
            ? undefined
            : `which no total can be (${WHOLE})`
          : implausibleGauge(scalar, sample.value, expected.now);
      if (why) {
        refused.push(`${shown()}, ${why}`);
        continue;
      }
      const family = scalars.get(name) ?? { name, help: scalar.help, type: scalar.type, series: [] };
      family.series.push({ labels: own(sample.labels), value: sample.value });
      scalars.set(name, family);
      continue;
    }
    const part = HISTOGRAM_PARTS.get(name);
    if (!part) continue;
    const { definition } = part;
    if (part.part === 'sum' ? !(Number.isFinite(sample.value) && sample.value >= 0) : !isWhole(sample.value)) {
      refused.push(
        `${shown()}, which no ${part.part === 'sum' ? 'sum of observations can be (finite, from 0)' : `count can be (${WHOLE})`}`,
      );
      continue;
    }
    const labels = own(sample.labels, ['le']);
    const entry = histograms.get(definition.name) ?? { definition, series: new Map<string, HistogramSeries>() };
    histograms.set(definition.name, entry);
    const key = seriesKey(labels);
    const series: HistogramSeries = entry.series.get(key) ?? {
      labels,
      buckets: definition.buckets.map((le) => ({ le, count: 0 })),
      sum: 0,
      count: 0,
    };
    entry.series.set(key, series);
    if (part.part === 'sum') series.sum = sample.value;
    else if (part.part === 'count') series.count = sample.value;
    else {
      const slot = series.buckets.find((b) => b.le === Number(sample.labels.le));
      if (slot) slot.count = sample.value;
    }
  }
  const state: GroupState = new Map(scalars);
  for (const { definition, series } of histograms.values()) {
    for (const s of series.values()) {
      const counts = [...s.buckets.map((b) => b.count), s.count];
      if (counts.some((c, i) => i > 0 && c < counts[i - 1]!))
        refused.push(`${describeSeries(definition.name, s.labels)} has buckets that are not cumulative`);
      else if (s.sum > s.count * (expected.now - EARLIEST + AHEAD_SECONDS))
        refused.push(
          `${describeSeries(`${definition.name}_sum`, s.labels)} = ${s.sum} is more than ${s.count} observation(s) can add up to`,
        );
    }
    state.set(definition.name, {
      name: definition.name,
      help: definition.help,
      type: 'histogram',
      series: [...series.values()],
    });
  }
  return refused.length ? { state: new Map(), refused } : { state, refused };
}
