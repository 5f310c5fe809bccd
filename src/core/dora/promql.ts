/**
 * The PromQL behind the DORA keys, shared by `deployctl dora`, the Grafana dashboards and the
 * recording rules, so that all three show the same numbers.
 *
 * Pushed counters need care: `increase()` misses a series' first value (a group's first
 * deployment arrives as 1, not 0 then 1) and extrapolates. deployctl's counters are exact totals,
 * so the change over a window is the total now minus the total a window ago, where a series that
 * did not exist a window ago counts from 0.
 */

import { FAMILIES } from '../families.js';

export const GROUP = 'job, service, environment';

/** A label selector; `filters` values are used as given (regexes in dashboards, literals in the CLI). */
export function selector(filters: Record<string, string>, matcher: '=' | '=~' = '=~'): string {
  const parts = Object.entries(filters).map(([name, value]) => `${name}${matcher}${JSON.stringify(value)}`);
  return parts.length ? `{${parts.join(', ')}}` : '';
}

/** Escapes a literal value for a PromQL string matcher used with =~. */
function literalRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The groups a command asks about as a selector of literal values, matched with =~ as the dashboards do. */
export function groupSelector(filter: {
  job: string;
  service?: string | undefined;
  environment?: string | undefined;
}): {
  filters: Record<string, string>;
  sel: string;
} {
  const filters: Record<string, string> = { job: literalRegex(filter.job) };
  if (filter.service !== undefined) filters.service = literalRegex(filter.service);
  if (filter.environment !== undefined) filters.environment = literalRegex(filter.environment);
  return { filters, sel: selector(filters) };
}

/** A selector with more matchers added. */
export function withLabels(sel: string, extra: string): string {
  if (!extra) return sel;
  return sel ? `${sel.slice(0, -1)}, ${extra}}` : `{${extra}}`;
}

/** How much a pushed counter (or histogram bucket, sum or count) grew during `window`, exactly. */
export function windowIncrease(series: string, window: string): string {
  return `clamp_min(${series} - (${series} offset ${window} or ${series} * 0), 0)`;
}

export interface DoraQueries {
  deploymentsByStatus: string;
  successes: string;
  rollbacks: string;
  deploymentFrequencyPerDay: string;
  /** DORA's: deployments that failed, plus changes that needed a rollback, ÷ finished deployments. */
  changeFailureRate: string;
  /** The plain ratio: failed ÷ finished deployments, rollbacks left out. */
  deploymentFailureRate: string;
  leadTimeMean: string;
  leadTimeMedian: string;
  timeToRestoreMean: string;
}

/**
 * The four keys per job/service/environment over `window` (a PromQL duration such as `30d`, or
 * Grafana's `$__range`). `days` is the window in days, for the frequency.
 */
export function doraQueries(sel: string, window: string, days: string): DoraQueries {
  const inc = (metric: string, extra = '') => windowIncrease(`${metric}${withLabels(sel, extra)}`, window);
  const perGroup = (expr: string, by = GROUP) => `sum by (${by}) (${expr})`;
  const mean = (family: string) => `${perGroup(inc(`${family}_sum`))} / (${perGroup(inc(`${family}_count`))} > 0)`;
  const successes = perGroup(inc(FAMILIES.deployments.name, 'status="success"'));
  const failures = perGroup(inc(FAMILIES.deployments.name, 'status="failure"'));
  const finished = `(${perGroup(inc(FAMILIES.deployments.name, 'status=~"success|failure"'))} > 0)`;
  const rollbacks = perGroup(inc(FAMILIES.rollbacks.name));
  return {
    deploymentsByStatus: perGroup(inc(FAMILIES.deployments.name), `${GROUP}, status`),
    successes,
    rollbacks,
    deploymentFrequencyPerDay: `${successes} / ${days}`,
    // A group recorded before rollbacks were counted has no rollback series: it counts 0.
    changeFailureRate: `(${failures} + (${rollbacks} or ${failures} * 0)) / ${finished}`,
    deploymentFailureRate: `${failures} / ${finished}`,
    leadTimeMean: mean(FAMILIES.leadTime.name),
    leadTimeMedian: `histogram_quantile(0.5, ${perGroup(inc(`${FAMILIES.leadTime.name}_bucket`), `${GROUP}, le`)})`,
    timeToRestoreMean: mean(FAMILIES.timeToRestore.name),
  };
}
