import type { MetricType } from '../../core/families.js';
import type { Labels } from '../../core/record.js';

export type { Labels, MetricType };

export interface ScalarSeries {
  labels: Labels;
  value: number;
}

export interface HistogramSeries {
  labels: Labels;
  /** Cumulative counts by upper bound, ascending, without +Inf (that is `count`). */
  buckets: { le: number; count: number }[];
  sum: number;
  count: number;
}

export interface ScalarFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  series: ScalarSeries[];
}

export interface HistogramFamily {
  name: string;
  help: string;
  type: 'histogram';
  series: HistogramSeries[];
}

export type Family =
  | ScalarFamily
  | HistogramFamily
  /** A family of a type deployctl never pushes (summary, untyped), kept only to report a conflict. */
  | { name: string; help: string; type: 'summary' | 'untyped'; series: never[] };

/** What a group on the gateway holds, by family name; grouping labels are left out of each series. */
export type GroupState = Map<string, Family>;

/** Identity of a series inside a family: its labels in a stable order. */
export function seriesKey(labels: Labels): string {
  return JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((name) => [name, labels[name]]),
  );
}

export function sameLabels(a: Labels, b: Labels): boolean {
  return seriesKey(a) === seriesKey(b);
}

/** The value of a counter or gauge without labels of its own (its first series), or undefined when absent. */
export function scalarValue(family: Family | undefined): number | undefined {
  const series = family?.series[0];
  return series && 'value' in series ? series.value : undefined;
}

/** A gauge or counter of the group by its definition, or undefined when the group does not hold it. */
export function gaugeValue(state: GroupState, definition: { name: string }): number | undefined {
  return scalarValue(state.get(definition.name));
}

/**
 * Deployments by status from the deployments counter: of the series with exactly these extra
 * labels when `labels` is given, else summed over every series of a status.
 */
export function totalsByStatus(family: Family | undefined, labels?: Labels): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const series of family?.series ?? []) {
    const { status, ...rest } = series.labels;
    if (status === undefined || !('value' in series)) continue;
    if (labels === undefined) {
      totals[status] = (totals[status] ?? 0) + series.value;
      continue;
    }
    if (!sameLabels(rest, labels)) continue;
    totals[status] = series.value;
  }
  return totals;
}
