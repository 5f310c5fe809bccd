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
