import { FAMILIES } from '../../core/families.js';
import { type Family, type GroupState, type HistogramFamily, type ScalarFamily, seriesKey } from './model.js';

/** Families whose series are a memory (record identities, deployed commits): what Prometheus saw is added to what the gateway holds. */
const MEMORIES = new Set<string>([FAMILIES.appliedRecords.name, FAMILIES.deployedCommits.name]);

export interface Continued {
  state: GroupState;
  /** The totals that were missing or lower on the gateway, as `family{labels}` (empty: nothing was lost). */
  lowered: string[];
  /** The families taken or merged from Prometheus: they are written back whole. */
  changed: Family[];
  /** Why Prometheus could not be asked, if it could not. */
  problem?: string;
}

const describe = (family: string, labels: Record<string, string>) =>
  `${family}${
    Object.keys(labels).length
      ? `{${Object.entries(labels)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
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
      if (now === undefined || now < was) lowered.push(describe(family.name, series.labels));
    }
  }
  return lowered;
}

/**
 * Continues a group from what Prometheus last scraped of it when the gateway lost its totals (a
 * gateway restarted without persistence, or from an old persistence file). Then Prometheus's view
 * is the newer one: every counter and histogram series takes the higher of the two (histograms
 * whole: buckets, sum and count), the memories of applied records and deployed commits get what
 * Prometheus saw added, and the other families Prometheus has replace the gateway's. A group whose
 * totals are all at least Prometheus's is left as it is. Pure.
 */
export function continueTotals(onGateway: GroupState, scraped: GroupState): Continued {
  const lowered = loweredTotals(onGateway, scraped);
  if (lowered.length === 0) return { state: onGateway, lowered, changed: [] };
  const state: GroupState = new Map(onGateway);
  const changed: Family[] = [];
  for (const family of scraped.values()) {
    const held = onGateway.get(family.name);
    const merges = family.type === 'counter' || family.type === 'histogram' || MEMORIES.has(family.name);
    if (!held || held.type !== family.type || !merges) {
      state.set(family.name, family);
      changed.push(family);
      continue;
    }
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
  return { state, lowered, changed };
}
